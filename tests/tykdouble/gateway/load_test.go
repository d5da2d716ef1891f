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
// does, in its layout, and loads it the way the gateway does. The compiler
// (its image's /build.sh) copies the plugin source to
// $(dirname $TYK_GW_PATH)/plugin_<name> beside the gateway source at
// $TYK_GW_PATH (…/github.com/TykTechnologies/tyk), makes a go.work of
// ./tyk and that folder, and runs go build -buildmode=plugin -trimpath
// there, naming the file <name>_<gateway version>_<os>_<arch>.so. The
// plugin's go.mod replaces keylens's identity module with ../identity,
// which the Dockerfile copies to …/TykTechnologies/identity. Here this
// double stands in for the gateway source, and cmd/loadplugin, built with
// -trimpath in the same workspace, for the gateway binary: plugin.Open
// checks that every package the two share was built alike.
func TestPluginLoads(t *testing.T) {
	repo, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "go", "src", "github.com", "TykTechnologies") // $(dirname $TYK_GW_PATH)
	const name = "keylens-plugin.so"                                                 // the Dockerfile's /build.sh argument
	build := filepath.Join(root, "plugin_"+strings.TrimSuffix(name, ".so"))
	copyTree(t, filepath.Join(repo, "tests", "tykdouble"), filepath.Join(root, "tyk"))
	copyTree(t, filepath.Join(repo, "plugin"), build)
	copyTree(t, filepath.Join(repo, "identity"), filepath.Join(root, "identity")) // the Dockerfile's COPY

	env := append(os.Environ(), "GOWORK=", "CGO_ENABLED=1")
	run := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		var stderr strings.Builder
		cmd.Dir, cmd.Env, cmd.Stderr = dir, env, &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s (in %s): %v\n%s%s", strings.Join(args, " "), dir, err, out, stderr.String())
		}
		return string(out)
	}
	run(root, "go", "work", "init", "./tyk")
	run(root, "go", "work", "use", "./"+filepath.Base(build))
	so := strings.TrimSuffix(name, ".so") + "_v5.8.1_" + runtime.GOOS + "_" + runtime.GOARCH + ".so"
	run(build, "go", "build", "-buildmode=plugin", "-trimpath", "-o", so)
	host := filepath.Join(root, "gateway")
	run(filepath.Join(root, "tyk"), "go", "build", "-trimpath", "-o", host, "./cmd/loadplugin")
	if out := run(root, host, filepath.Join(build, so)); strings.TrimSpace(out) != "ok" {
		t.Fatalf("loading the plugin: %s", out)
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
