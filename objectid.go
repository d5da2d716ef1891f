package keylens

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"sync/atomic"
	"time"
)

var (
	objectIDCounter atomic.Uint32
	processUnique   [5]byte
)

func init() {
	var b [4]byte
	_, _ = rand.Read(b[:])
	objectIDCounter.Store(binary.BigEndian.Uint32(b[:]))
	_, _ = rand.Read(processUnique[:])
}

// NewObjectID returns a new 24-character lowercase hex id in the layout of a
// MongoDB ObjectID, as Tyk's ids are: 4 bytes of Unix seconds, 5 random
// bytes fixed per process, a 3-byte counter. Ids made by one process
// therefore sort in creation order.
func NewObjectID(now time.Time) string {
	var b [12]byte
	binary.BigEndian.PutUint32(b[0:4], uint32(now.Unix()))
	copy(b[4:9], processUnique[:])
	c := objectIDCounter.Add(1)
	b[9], b[10], b[11] = byte(c>>16), byte(c>>8), byte(c)
	return hex.EncodeToString(b[:])
}

// IsObjectID reports whether s is 24 lowercase hex characters.
func IsObjectID(s string) bool {
	return len(s) == 24 && isLowerHex(s)
}
