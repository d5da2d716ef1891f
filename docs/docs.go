// Package docs carries the API description, docs/openapi.yaml, into the
// binary: the admin listener serves it at /api/openapi.json, and the tests
// check the code against it.
//
// The YAML is converted to JSON once, when the admin listener starts, so
// go.yaml.in/yaml ships in the binary: about 200 KB of a 49 MB binary,
// and some 15 ms at start on the 2-core test machine. Converting at build
// time instead would need either a generated JSON file committed beside
// the YAML, a build output that can drift from it, or a generate step
// before every build; one source read as written is worth those 200 KB.
package docs

import (
	_ "embed"
	"encoding/json"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// OpenAPIYAML is docs/openapi.yaml as written.
//
//go:embed openapi.yaml
var OpenAPIYAML []byte

// OpenAPIJSON converts OpenAPIYAML to JSON (anchors and aliases expanded).
func OpenAPIJSON() ([]byte, error) {
	var v any
	if err := yaml.Unmarshal(OpenAPIYAML, &v); err != nil {
		return nil, fmt.Errorf("docs/openapi.yaml: %w", err)
	}
	v, err := jsonable(v)
	if err != nil {
		return nil, fmt.Errorf("docs/openapi.yaml: %w", err)
	}
	return json.Marshal(v)
}

// jsonable replaces YAML's maps with non-string keys, which JSON cannot
// carry, by maps with string keys, refusing keys that are not strings.
func jsonable(v any) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			e, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			v[k] = e
		}
		return v, nil
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			s, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("the key %v is not a string: quote it", k)
			}
			e, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			out[s] = e
		}
		return out, nil
	case []any:
		for i, e := range v {
			e, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			v[i] = e
		}
		return v, nil
	default:
		return v, nil
	}
}
