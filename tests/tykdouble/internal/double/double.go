// Package double holds what the gateway double measures and configures,
// out of the plugin's reach: Go forbids importing an internal package
// from outside github.com/TykTechnologies/tyk, so plugin code that used it
// would not compile.
package double

import (
	"reflect"
	"sync/atomic"
)

// HashKeys is the double gateway's hash_keys: on, as in production.
var HashKeys = true

// DefinitionClones counts ctx.GetDefinition's deep copies.
var DefinitionClones atomic.Int64

// Clone deep-copies v by reflection, as the gateway's GetDefinition does
// with the whole API definition on every call.
func Clone[T any](v *T) *T {
	if v == nil {
		return nil
	}
	out := clone(reflect.ValueOf(v).Elem())
	p := reflect.New(out.Type())
	p.Elem().Set(out)
	return p.Interface().(*T)
}

func clone(v reflect.Value) reflect.Value {
	out := reflect.New(v.Type()).Elem()
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			p := reflect.New(v.Type().Elem())
			p.Elem().Set(clone(v.Elem()))
			out.Set(p)
		}
	case reflect.Interface:
		if !v.IsNil() {
			out.Set(clone(v.Elem()))
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if out.Field(i).CanSet() {
				out.Field(i).Set(clone(v.Field(i)))
			}
		}
	case reflect.Slice:
		if !v.IsNil() {
			s := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
			for i := range v.Len() {
				s.Index(i).Set(clone(v.Index(i)))
			}
			out.Set(s)
		}
	case reflect.Map:
		if !v.IsNil() {
			m := reflect.MakeMapWithSize(v.Type(), v.Len())
			for it := v.MapRange(); it.Next(); {
				m.SetMapIndex(clone(it.Key()), clone(it.Value()))
			}
			out.Set(m)
		}
	default:
		out.Set(v)
	}
	return out
}
