package gateway_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPluginRequiresNoMoreThanTheOldestRelease guards the plugin's module
// graph: every module that released gateways also link (the columns of
// testdata/released-gateways.tsv) is required by the plugin's modules,
// plugin and identity, at no version above the oldest supported release's;
// the plugin's graph holds no other module; and both modules' go
// directives allow that release's Go, with no toolchain line. A newer
// requirement would make the plugin compiler build the plugin against
// code the gateway binary does not have, and the gateway refuse to load
// it; a newer go directive would not compile with that release's Go.
func TestPluginRequiresNoMoreThanTheOldestRelease(t *testing.T) {
	oldest := releases(t)[0]
	check := func(what, path, version string) {
		if max, shared := oldest.modules[path]; shared && semverLess(max, version) {
			t.Errorf("%s %s %s; the oldest supported release (%s) links %s: require it at %s or lower",
				what, path, version, oldest.name, max, max)
		}
	}
	repo := filepath.Join("..", "..", "..")
	for _, dir := range []string{"identity", "plugin"} {
		mod := filepath.Join(repo, dir)
		var gomod struct {
			Go        string
			Toolchain string
			Require   []struct{ Path, Version string }
		}
		if err := json.Unmarshal([]byte(goCmd(t, mod, "mod", "edit", "-json")), &gomod); err != nil {
			t.Fatal(err)
		}
		for _, r := range gomod.Require {
			check(dir+"/go.mod requires", r.Path, r.Version)
		}
		if gomod.Go == "" || semverLess("v"+oldest.goVer, "v"+gomod.Go) {
			t.Errorf("%s/go.mod says go %s; the oldest supported release (%s) is built with Go %s", dir, gomod.Go, oldest.name, oldest.goVer)
		}
		if gomod.Toolchain != "" {
			t.Errorf("%s/go.mod names toolchain %s: the plugin compiler builds with its gateway's Go", dir, gomod.Toolchain)
		}
	}
	// The plugin's whole graph, identity's requirements included, as the
	// plugin compiler's workspace starts from it: no workspace of ours.
	out := goCmd(t, filepath.Join(repo, "plugin"), "list", "-m", "-f", "{{.Path}} {{.Version}}", "all")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		path, version, _ := strings.Cut(line, " ")
		if _, shared := oldest.modules[path]; !shared && !strings.HasPrefix(path, "github.com/keylens/keylens/") {
			// Any other module may be one the gateway links too, at a
			// version no row says: add it to the table first.
			t.Errorf("the plugin's module graph holds %s %s, which released-gateways.tsv does not list", path, version)
		}
		check("the plugin's module graph selects", path, version)
	}
}

func goCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go %s (in %s): %v\n%s", strings.Join(args, " "), dir, err, msg)
	}
	return string(out)
}

// semverLess reports whether version a is below b: "vMAJOR.MINOR.PATCH",
// missing parts read as 0 (a go directive's "1.22"); a pre-release or
// build suffix is ignored, which errs towards equal.
func semverLess(a, b string) bool {
	pa, pb := versionParts(a), versionParts(b)
	for i := range pa {
		if pa[i] != pb[i] {
			return pa[i] < pb[i]
		}
	}
	return false
}

func versionParts(v string) [3]int {
	var p [3]int
	v = strings.TrimPrefix(v, "v")
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		v = v[:i]
	}
	for i, s := range strings.SplitN(v, ".", 3) {
		p[i], _ = strconv.Atoi(s)
	}
	return p
}
