package gateway_test

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestPluginLoads builds the keylens plugin the way Tyk's plugin compiler
// builds it, in its layout and its order, and loads it the way the
// gateway does, once for each supported release line
// (testdata/released-gateways.tsv).
//
// The compiler image first builds the gateway binary from the gateway's
// own go.mod, with no workspace (go install -tags=goplugin -trimpath).
// Only then does its /build.sh copy the plugin source to
// $(dirname $TYK_GW_PATH)/plugin_<name> beside the gateway source at
// $TYK_GW_PATH (…/github.com/TykTechnologies/tyk), make a go.work of ./tyk
// and that folder, and run go build -buildmode=plugin -trimpath there,
// naming the file <name>_<gateway version>_<os>_<arch>.so. In that
// workspace minimal version selection raises every module to the higher
// of the two sides' requirements, so a plugin requiring a module above
// the gateway's version is built against code the gateway binary does not
// have, and plugin.Open refuses it ("plugin was built with a different
// version of package"). The plugin's go.mod replaces keylens's identity
// module with ../identity, which the Dockerfile copies to
// …/TykTechnologies/identity.
//
// Here this double stands in for the gateway source, its go.mod pinning
// the release's versions, and cmd/loadplugin, which links golang-jwt/v5
// as released gateways do, for the gateway binary. The oldest line is
// built with its Go (fetched as a toolchain module from the module proxy),
// so the plugin is known to compile with it.
func TestPluginLoads(t *testing.T) {
	for i, rel := range releases(t) {
		t.Run(rel.name, func(t *testing.T) { loadPlugin(t, rel, i == 0) })
	}
}

func loadPlugin(t *testing.T, rel release, oldest bool) {
	repo, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "go", "src", "github.com", "TykTechnologies") // $(dirname $TYK_GW_PATH)
	const name = "keylens-plugin.so"                                                 // the Dockerfile's /build.sh argument
	build := filepath.Join(root, "plugin_"+strings.TrimSuffix(name, ".so"))
	gw := filepath.Join(root, "tyk")
	copyTree(t, filepath.Join(repo, "tests", "tykdouble"), gw)

	run := func(dir string, env []string, args ...string) string {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		var stderr strings.Builder
		cmd.Dir, cmd.Env, cmd.Stderr = dir, append(os.Environ(), env...), &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s (in %s): %v\n%s%s", strings.Join(args, " "), dir, err, out, stderr.String())
		}
		return string(out)
	}
	// The oldest line is built with its own Go, as its compiler image
	// does: the plugin must compile with it. The others use this machine's.
	var toolchain []string
	if oldest {
		toolchain = []string{"GOTOOLCHAIN=go" + rel.goVer}
	}
	// The gateway: its go.mod at the release's versions, its binary built
	// from that go.mod alone, before any workspace exists.
	noWork := append([]string{"GOWORK=off", "CGO_ENABLED=1"}, toolchain...)
	sums, err := os.ReadFile(filepath.Join(repo, "tests", "tykdouble", "testdata", "released-gateways.sum"))
	if err != nil {
		t.Fatal(err)
	}
	appendFile(t, filepath.Join(gw, "go.sum"), sums) // no checksum database needed
	for mod, v := range rel.modules {
		run(gw, noWork, "go", "get", mod+"@"+v)
	}
	host := filepath.Join(root, "gateway")
	run(gw, noWork, "go", "build", "-tags=goplugin", "-trimpath", "-o", host, "./cmd/loadplugin")
	for mod, v := range rel.modules {
		if got := strings.TrimSpace(run(root, nil, "go", "version", "-m", host)); !strings.Contains(got, "\tdep\t"+mod+"\t"+v+"\t") {
			t.Fatalf("the gateway binary does not link %s at %s:\n%s", mod, v, got)
		}
	}

	// Then /build.sh: the plugin beside the gateway, a workspace of the
	// two, the plugin built in it.
	copyTree(t, filepath.Join(repo, "plugin"), build)
	copyTree(t, filepath.Join(repo, "identity"), filepath.Join(root, "identity")) // the Dockerfile's COPY
	work := append([]string{"GOWORK=", "CGO_ENABLED=1"}, toolchain...)
	run(root, work, "go", "work", "init", "./tyk")
	run(root, work, "go", "work", "use", "./"+filepath.Base(build))
	so := strings.TrimSuffix(name, ".so") + "_" + runtime.GOOS + "_" + runtime.GOARCH + ".so"
	run(build, work, "go", "build", "-buildmode=plugin", "-trimpath", "-o", so)
	if oldest {
		if v := run(root, work, "go", "env", "GOVERSION"); strings.TrimSpace(v) != "go"+rel.goVer {
			t.Fatalf("built with %s, not the line's Go %s", v, rel.goVer)
		}
	}
	if out := run(root, nil, host, filepath.Join(build, so)); strings.TrimSpace(out) != "ok" {
		t.Fatalf("loading the plugin: %s", out)
	}
}

func appendFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.Write(b)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}

// copyTree copies the files of src to dst as cp -r does, leaving out a
// go.work (the compiler makes its own) and built plugins.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if base := d.Name(); base == "go.work" || base == "go.work.sum" || strings.HasSuffix(base, ".so") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
