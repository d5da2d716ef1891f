package tykanalytics

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/identity/backoff"
)

// Options configure a Consumer; zero values take the defaults.
type Options struct {
	// Redis is the gateway's Redis.
	Redis *redis.Client
	// AnalyticsKey is the gateway's analytics list (DefaultAnalyticsKey);
	// its enable_multiple_analytics_keys variants, KEY_0 ... KEY_9, are
	// consumed too.
	AnalyticsKey string
	// ConsumerID names this consumer's processing list; every process
	// consuming the same lists needs its own (ValidConsumerID).
	ConsumerID string
	// ChunkSize bounds the records taken at once (DefaultChunkSize, at
	// most MaxChunkSize); a chunk also stops growing at ChunkBytes.
	ChunkSize  int
	ChunkBytes int
	// PollInterval is how long to wait when every list is empty.
	PollInterval time.Duration
	// DeadLetterMax bounds the dead-letter list (DefaultDeadLetterMax).
	DeadLetterMax int
	// Store is where chunks are committed: the analytics committer,
	// which returns once a batch is stored and applies a batch id once.
	Store   keylens.HitWriter
	Logger  *slog.Logger
	Metrics *Metrics
}

// Defaults and limits of Options.
const (
	DefaultAnalyticsKey  = "analytics-tyk-system-analytics"
	DefaultChunkSize     = 2000
	MaxChunkSize         = 5000
	DefaultChunkBytes    = 8 << 20
	DefaultPollInterval  = 200 * time.Millisecond
	DefaultDeadLetterMax = 10000
	maxBackoff           = 2 * time.Second
	lengthsEvery         = time.Second
	lagWarning           = 30 * time.Second // of the gateway's 60 s expiry
)

var consumerIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// ValidConsumerID reports whether id can name a consumer: 1 to 128 of
// letters, digits, '.', '_' and '-'.
func ValidConsumerID(id string) bool { return consumerIDPattern.MatchString(id) }

// ConsumerIDFrom makes a valid consumer id of s (a host name, say).
func ConsumerIDFrom(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	if len(b) > 100 {
		b = b[:100]
	}
	if len(b) == 0 {
		return "keylens"
	}
	return string(b)
}

// Keys are the Redis keys a consumer uses.
type Keys struct {
	// Lists are the gateway's lists it takes records from.
	Lists []string
	// Processing holds the chunk being counted; ChunkID its id; Sequence
	// and Epoch make the next id.
	Processing, ChunkID, Sequence, Epoch string
	// DeadLetter receives the records that cannot be counted, the newest
	// DeadLetterMax kept.
	DeadLetter string
}

// KeysFor returns the Redis keys of consumer id on the lists of base.
func KeysFor(base, id string) Keys {
	k := Keys{Lists: []string{base}, DeadLetter: "keylens:tyk-dead-letter:" + base}
	for i := range 10 {
		k.Lists = append(k.Lists, base+"_"+strconv.Itoa(i))
	}
	p := "keylens:tyk:" + id + ":"
	k.Processing, k.ChunkID, k.Sequence, k.Epoch = p+"processing", p+"chunk", p+"sequence", p+"epoch"
	return k
}

// takeScript names the chunk in the processing list if there is one (a
// chunk taken before a crash or a failure); else it moves up to ARGV[1]
// records (and ARGV[2] bytes, at least one record) from the head of a
// gateway list to the processing list, under a new id: the dataset's epoch
// (random, set once: a Redis that lost its data starts a new one) and the
// next sequence number. One script, so the move is atomic: a record is in
// the gateway's list or in the processing list, never in both or neither.
// It answers the chunk's id, or nil when there is nothing to take; the
// records are read with an LRANGE in the same transaction, which costs
// Redis a fraction of returning them from the script.
var takeScript = redis.NewScript(`
local id = redis.call('GET', KEYS[3])
if id then
	if redis.call('EXISTS', KEYS[2]) == 1 then return id end
	redis.call('DEL', KEYS[3])
end
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items == 0 then return false end
local n, size, limit = 0, 0, tonumber(ARGV[2])
for i = 1, #items do
	n = i
	size = size + #items[i]
	if size >= limit then break end
end
-- A script that fails half way keeps what it wrote, so the gateway's list
-- is trimmed last: whatever fails before leaves the records there, and a
-- processing list without an id (nothing committed of it) is dropped.
redis.call('DEL', KEYS[2])
local epoch = redis.call('GET', KEYS[5])
if not epoch then
	epoch = ARGV[3]
	redis.call('SET', KEYS[5], epoch)
end
id = epoch .. '-' .. redis.call('INCR', KEYS[4])
for i = 1, n, 1000 do
	redis.call('RPUSH', KEYS[2], unpack(items, i, math.min(i + 999, n)))
end
redis.call('SET', KEYS[3], id)
redis.call('LTRIM', KEYS[1], n, -1)
return id
`)

// doneScript ends the chunk ARGV[1], if it is still the one in the
// processing list: the records at the 0-based indexes ARGV[3...] go to the
// dead-letter list (unless that key holds something else than a list: a
// chunk must never be stuck), trimmed to its newest ARGV[2], and the
// chunk is deleted. Running it twice does nothing the second time.
var doneScript = redis.NewScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
local t = redis.call('TYPE', KEYS[3]).ok
if #ARGV > 2 and (t == 'list' or t == 'none') then
	local items = redis.call('LRANGE', KEYS[1], 0, -1)
	for i = 3, #ARGV do
		local v = items[tonumber(ARGV[i]) + 1]
		if v then redis.call('RPUSH', KEYS[3], v) end
	end
	redis.call('LTRIM', KEYS[3], -tonumber(ARGV[2]), -1)
end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
`)

// Consumer counts the records of a gateway's analytics lists, each once.
type Consumer struct {
	o    Options
	keys Keys
	m    *Metrics
	log  *slog.Logger
	dec  *Decoder
	t    Tally

	stopping chan struct{} // closed by Close: take no more chunks
	cancel   context.CancelFunc
	ctx      context.Context // ended when Close gives up waiting
	done     chan struct{}
	once     sync.Once

	failing   bool      // the last Redis command failed
	warned    bool      // a warning was logged for this failure
	redisWarn time.Time // the last one
	lagWarn   time.Time
	lastLens  time.Time
}

// New returns a consumer; Start runs it.
func New(o Options) (*Consumer, error) {
	if o.AnalyticsKey == "" {
		o.AnalyticsKey = DefaultAnalyticsKey
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.ChunkBytes <= 0 {
		o.ChunkBytes = DefaultChunkBytes
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.DeadLetterMax <= 0 {
		o.DeadLetterMax = DefaultDeadLetterMax
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	switch {
	case o.Redis == nil || o.Store == nil:
		return nil, errors.New("tykanalytics: a consumer needs Redis and a Store")
	case !ValidConsumerID(o.ConsumerID):
		return nil, fmt.Errorf("tykanalytics: consumer id %q: 1 to 128 letters, digits, '.', '_' or '-'", o.ConsumerID)
	case o.ChunkSize > MaxChunkSize:
		return nil, fmt.Errorf("tykanalytics: chunk size %d is over %d", o.ChunkSize, MaxChunkSize)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Consumer{o: o, keys: KeysFor(o.AnalyticsKey, o.ConsumerID), m: o.Metrics,
		log: o.Logger.With("consumer", o.ConsumerID), dec: NewDecoder(),
		stopping: make(chan struct{}), ctx: ctx, cancel: cancel, done: make(chan struct{})}, nil
}

// Keys returns the Redis keys the consumer uses.
func (c *Consumer) Keys() Keys { return c.keys }

// Start runs the consumer until Close.
func (c *Consumer) Start() {
	c.log.Info("consuming Tyk analytics", "lists", c.keys.Lists[0]+" and _0 ... _9", "processing", c.keys.Processing,
		"dead_letter", c.keys.DeadLetter, "chunk_size", c.o.ChunkSize)
	go c.run()
}

// Close stops taking chunks and waits until the chunk in hand is committed
// and deleted, or ctx ends; a chunk left then stays in the processing list
// and is committed (once) by the next start.
func (c *Consumer) Close(ctx context.Context) error {
	c.once.Do(func() { close(c.stopping) })
	select {
	case <-c.done:
		c.cancel()
		return nil
	case <-ctx.Done():
		c.cancel()
		<-c.done
		return errors.New("Tyk analytics: the chunk in hand was left in the processing list; the next start commits it")
	}
}

func (c *Consumer) stopped() bool {
	select {
	case <-c.stopping:
		return true
	default:
		return false
	}
}

// wait sleeps d, or less if Close is called; it reports whether to go on.
func (c *Consumer) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.stopping:
		return false
	case <-t.C:
		return true
	}
}

func (c *Consumer) run() {
	defer close(c.done)
	next := 0 // the list to try first: they take turns
	retry := backoff.Backoff{Min: 100 * time.Millisecond, Max: maxBackoff}
	for !c.stopped() {
		if time.Since(c.lastLens) >= lengthsEvery {
			c.sampleLengths()
		}
		took, err := false, error(nil)
		for i := range c.keys.Lists {
			list := (next + i) % len(c.keys.Lists)
			if took, err = c.one(c.keys.Lists[list]); err != nil || took {
				next = (list + 1) % len(c.keys.Lists)
				break
			}
		}
		switch {
		case err != nil:
			if !c.wait(retry.Next()) {
				return
			}
		case took:
			retry.Reset()
		default:
			retry.Reset()
			c.m.recordAge.WithLabelValues("oldest").Set(0)
			c.m.recordAge.WithLabelValues("newest").Set(0)
			if !c.wait(c.o.PollInterval) {
				return
			}
		}
	}
}

// redisErr notes the outcome of a Redis command.
func (c *Consumer) redisErr(op string, err error) error {
	if err == nil {
		if c.warned {
			c.log.Info("Redis answers again")
		}
		c.failing, c.warned = false, false
		c.m.up.Set(1)
		return nil
	}
	c.m.up.Set(0)
	c.m.errors.WithLabelValues("redis").Inc()
	if !c.failing && time.Since(c.redisWarn) > time.Minute {
		// Once a minute at most: one list of the wrong type fails every
		// round while the others succeed.
		c.log.Warn("Redis failed; retrying", "op", op, "err", err)
		c.redisWarn, c.warned = time.Now(), true
	}
	c.failing = true
	return err
}

// sampleLengths reads every list's length, and the dead-letter list's.
func (c *Consumer) sampleLengths() {
	c.lastLens = time.Now()
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	cmds, err := c.o.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, l := range c.keys.Lists {
			p.LLen(ctx, l)
		}
		p.LLen(ctx, c.keys.DeadLetter)
		return nil
	})
	if c.redisErr("LLEN", err) != nil {
		return
	}
	for i, l := range c.keys.Lists {
		c.m.listLength.WithLabelValues(l).Set(float64(cmds[i].(*redis.IntCmd).Val()))
	}
	c.m.deadLetters.Set(float64(cmds[len(cmds)-1].(*redis.IntCmd).Val()))
}

// one takes a chunk (the one left in the processing list, or a new one
// from list), counts it, commits it and deletes it. It reports whether
// there was a chunk; an error means it is still in the processing list.
func (c *Consumer) one(list string) (bool, error) {
	var epoch [8]byte
	_, _ = rand.Read(epoch[:])
	id, items, err := c.take(list, hex.EncodeToString(epoch[:]))
	if err != nil || id == "" {
		return false, err
	}
	taken := time.Now()
	c.dec.Count(items, taken, &c.t)
	if c.t.Counted > 0 {
		c.m.recordAge.WithLabelValues("oldest").Set(taken.Sub(time.Unix(0, c.t.Oldest)).Seconds())
		c.m.recordAge.WithLabelValues("newest").Set(taken.Sub(time.Unix(0, c.t.Newest)).Seconds())
		if age := taken.Sub(time.Unix(0, c.t.Oldest)); age > lagWarning && taken.Sub(c.lagWarn) > time.Minute {
			c.lagWarn = taken
			c.log.Warn("Tyk analytics records are taken late: the gateway lets unread records expire after 60 s",
				"oldest_age", age.Round(time.Second).String(), "hint", "raise --tyk-chunk-size, lower --tyk-poll-interval, or add consumers")
		}
	}
	if len(c.t.Rejected) > 0 {
		r := c.t.Rejected[0]
		c.log.Warn("Tyk analytics records set aside in the dead-letter list", "records", len(c.t.Rejected),
			"first_reason", r.Reason, "first_err", r.Err, "dead_letter", c.keys.DeadLetter)
	}
	result := "no_keys"
	if len(c.t.Series) > 0 {
		// The chunk's id in the store: its records are counted once
		// however often this runs.
		applied, err := c.commit(chunkBatchID(c.o.ConsumerID, id, items), len(items))
		if err != nil {
			return true, err
		}
		result = "duplicate"
		if applied {
			result = "committed"
		}
	}
	if err := c.finish(id, c.t.Rejected); err != nil {
		return true, err
	}
	c.m.tally(&c.t)
	c.m.chunks.WithLabelValues(result).Inc()
	return true, nil
}

// take runs the take script on list and reads the chunk it names, in one
// MULTI/EXEC: its id and records; no id when there is nothing to take.
// One transaction, so that a process sharing the consumer id cannot finish
// that chunk and take another between the two (the records read would
// then not be the chunk named).
func (c *Consumer) take(list, epoch string) (string, []string, error) {
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	var script *redis.Cmd
	var read *redis.StringSliceCmd
	_, err := c.o.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
		// EVAL, not EVALSHA: a restarted Redis has forgotten the script,
		// and a NOSCRIPT inside MULTI would fail the whole transaction.
		script = takeScript.Eval(ctx, p, []string{list, c.keys.Processing, c.keys.ChunkID, c.keys.Sequence, c.keys.Epoch},
			c.o.ChunkSize, c.o.ChunkBytes, epoch)
		read = p.LRange(ctx, c.keys.Processing, 0, -1)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", nil, c.redisErr("take", err)
	}
	id, err := script.Text()
	if errors.Is(err, redis.Nil) {
		return "", nil, c.redisErr("take", nil)
	}
	if c.redisErr("take", err) != nil {
		return "", nil, err
	}
	items, err := read.Result()
	if c.redisErr("take", err) != nil {
		return "", nil, err
	}
	return id, items, nil
}

// chunkBatchID names a chunk's batch: the consumer, the chunk's id in
// Redis, and a CRC-32C of its records, so that a Redis restored from an
// older snapshot, which hands out sequence numbers again, cannot give a
// different chunk an id the store has applied.
func chunkBatchID(consumer, chunk string, items []string) string {
	table := crc32.MakeTable(crc32.Castagnoli)
	var crc uint32
	var buf []byte
	for _, it := range items {
		buf = binary.BigEndian.AppendUint32(buf[:0], uint32(len(it)))
		buf = append(buf, it...)
		crc = crc32.Update(crc, table, buf)
	}
	return fmt.Sprintf("tyk/%s/%s/%08x", consumer, chunk, crc)
}

// commit stores the tally's series under id, retrying while the store
// fails; it reports whether they were applied now (false: the id was
// applied before). Hits enter keylens here: a batch that fails
// keylens.ValidateHits, or that the store refuses as invalid (a portal
// whose rules differ), sends the chunk's n records to the dead-letter list
// rather than block the stream.
func (c *Consumer) commit(id string, n int) (bool, error) {
	batch := []keylens.HitBatch{{ID: id, Series: c.t.Series}}
	if err := keylens.ValidateHits(batch); err != nil {
		c.refuse(id, n, err)
		return false, nil
	}
	retry := backoff.Backoff{Min: 50 * time.Millisecond, Max: maxBackoff}
	for {
		applied, err := c.o.Store.AddHits(c.ctx, batch)
		if err == nil {
			return applied[0], nil
		}
		if keylens.ErrorCode(err) == keylens.EINVALID {
			c.refuse(id, n, err)
			return false, nil
		}
		c.m.errors.WithLabelValues("commit").Inc()
		// EUNAVAILABLE (the committer is behind, or the store down):
		// the same chunk again, later. When stopping, it stays in the
		// processing list for the next start.
		if c.ctx.Err() != nil || c.stopped() {
			return false, err
		}
		c.log.Debug("committing a chunk of Tyk analytics failed; retrying", "err", err)
		c.wait(retry.Next())
	}
}

// refuse sets the chunk's n records aside, for the dead-letter list, as
// uncountable: its batch was refused for err.
func (c *Consumer) refuse(id string, n int, err error) {
	c.log.Error("a chunk of Tyk analytics was refused; its records go to the dead-letter list", "err", err, "batch", id)
	c.t.Series, c.t.Counted, c.t.Rejected = c.t.Series[:0], 0, c.t.Rejected[:0]
	clear(c.t.NoSession)
	for i := range n {
		c.t.Rejected = append(c.t.Rejected, Rejection{i, RejectUncountable, err})
	}
}

// finish moves the chunk's rejected records to the dead-letter list and
// deletes it, retrying while Redis fails.
func (c *Consumer) finish(id string, rejected []Rejection) error {
	args := []any{id, c.o.DeadLetterMax}
	for _, r := range rejected {
		args = append(args, r.Index)
	}
	retry := backoff.Backoff{Min: 100 * time.Millisecond, Max: maxBackoff}
	for {
		ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
		err := doneScript.Run(ctx, c.o.Redis, []string{c.keys.Processing, c.keys.ChunkID, c.keys.DeadLetter}, args...).Err()
		cancel()
		if c.redisErr("done", err) == nil {
			break
		}
		if c.ctx.Err() != nil || !c.wait(retry.Next()) {
			return err // committed: the next start finds it applied and deletes it
		}
	}
	return nil
}
