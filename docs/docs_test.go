package docs

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestOpenAPIValid loads the description as written (YAML) and as served
// (JSON) with kin-openapi's loader, and validates both as OpenAPI 3.1,
// examples included: what a viewer needs to render it.
func TestOpenAPIValid(t *testing.T) {
	js, err := OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"yaml": OpenAPIYAML, "json": js} {
		doc, err := openapi3.NewLoader().LoadFromData(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !doc.IsOpenAPI31OrLater() || doc.OpenAPI != "3.1.0" {
			t.Errorf("%s: openapi %q, want 3.1.0", name, doc.OpenAPI)
		}
		if err := doc.Validate(context.Background()); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	var v map[string]any
	if err := json.Unmarshal(js, &v); err != nil {
		t.Fatal(err)
	}
	if _, ok := v["x-sidecar-servers"]; !ok {
		t.Error("the JSON lost a member of the YAML")
	}
}
