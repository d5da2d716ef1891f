package tests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The README's examples are run in order, as a newcomer would paste them,
// against a fresh keylens: every ```sh block runs, in one bash with
// `set -euo pipefail`, unless the line before its fence is a comment
// starting with readmeNotRun (commands that need something outside a test:
// make, docker, a Tyk gateway, an identity provider, a second keylens).
//
// What the README shows a command answering is checked:
//   - `#` lines right under a command (no blank line between) are its
//     output;
//   - a ```json block right after a block that runs is the output of that
//     block's last command.
//
// Outputs are compared ignoring whitespace, with "…" standing for any text
// and a <placeholder> for any non-empty text (ids, keys, timestamps). A
// command whose output is not shown must not answer an error.
//
// keylens runs on ports of its own; the README's addresses
// (http://127.0.0.1:3000, :8181, :3001) are pointed at them.

const readmeNotRun = "<!-- not run by the README test:"

func TestREADMERunsInOrder(t *testing.T) {
	bash := findBinary(t, "bash", "bash")
	findBinary(t, "curl", "curl")
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := parseREADME(string(readme))
	if err != nil {
		t.Fatal(err)
	}
	in := startKeylens(t, "", []string{"KEYLENS_ADMIN_KEY=" + testAdminKey})
	script := strings.NewReplacer(
		"http://127.0.0.1:3000", in.AdminURL,
		"http://127.0.0.1:8181", in.SidecarURL,
		"http://127.0.0.1:3001", in.PortalURL,
	).Replace(doc.script)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, "-c", script, "README.md")
	cmd.Dir = t.TempDir()
	cmd.Env = append(cleanEnv(), "KEYLENS_ADMIN_KEY="+testAdminKey, "HOME="+cmd.Dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	outputs := splitByLine(stdout.String())
	if runErr != nil {
		last := 0
		if len(outputs) > 0 {
			last = outputs[len(outputs)-1].line
		}
		t.Fatalf("the README's commands stopped (%v) at README.md:%d:\n%s\nlast output: %q", runErr, last, stderr.String(),
			tail(outputs))
	}
	shown := map[int]bool{} // lines of commands whose output the README shows
	for _, want := range doc.outputs {
		line, got, ok := outputBefore(outputs, want.after, want.line)
		if !ok {
			t.Errorf("README.md:%d: no command before this output ran", want.line)
			continue
		}
		shown[line] = true
		if !matchesShown(want.text, got) {
			t.Errorf("README.md:%d: the README shows\n\t%s\nbut the command at line %d answered\n\t%s", want.line,
				strings.TrimSpace(want.text), line, strings.TrimSpace(got))
		}
	}
	for _, o := range outputs {
		if !shown[o.line] && (strings.Contains(o.text, `"Status":"Error"`) || strings.Contains(o.text, `{"error":`)) {
			t.Errorf("README.md:%d answered an error the README does not show: %s", o.line, strings.TrimSpace(o.text))
		}
	}
	if t.Failed() {
		t.Logf("stderr of the README's commands:\n%s", stderr.String())
	}
}

// readmeDoc is what runs of the README, and what it shows.
type readmeDoc struct {
	// script is the README with every line that does not run blanked,
	// so that a line of the script is the same line of the README.
	script  string
	outputs []shownOutput
}

// shownOutput is an output the README shows at line: that of the last
// command that ran between README lines after and line (bash names a
// command spread over lines by its first or its last line).
type shownOutput struct {
	line, after int
	text        string
}

// The script's first line: strict bash, and before each command a mark of
// its line on stdout, so that outputs can be told apart.
const readmePrelude = `set -euo pipefail; trap 'printf "\036%d\037" "$LINENO"' DEBUG; ` +
	`trap 'echo "README.md:$LINENO: exit status $?" >&2' ERR`

func parseREADME(readme string) (readmeDoc, error) {
	lines := strings.Split(readme, "\n")
	script := make([]string, len(lines))
	var doc readmeDoc
	lastRunBlockEnd, lastRunBlockStart := -1, 0
	for i := 0; i < len(lines); i++ {
		fence, ok := strings.CutPrefix(lines[i], "```")
		if !ok {
			continue
		}
		start := i
		end := start + 1
		for end < len(lines) && lines[end] != "```" {
			end++
		}
		if end == len(lines) {
			return doc, fmt.Errorf("README.md:%d: a code block is not closed", start+1)
		}
		i = end
		if fence == "json" && lastRunBlockEnd >= 0 && strings.TrimSpace(strings.Join(lines[lastRunBlockEnd+1:start], "")) == "" {
			doc.outputs = append(doc.outputs, shownOutput{line: start + 1, after: lastRunBlockStart,
				text: strings.Join(lines[start+1:end], "\n")})
			continue
		}
		if fence != "sh" || skipped(lines, start) {
			continue
		}
		after := start + 1 // README line: outputs belong to commands after it
		inOutput := false
		for j := start + 1; j < end; j++ {
			l := lines[j]
			switch {
			case strings.HasPrefix(l, "#"):
				text := strings.TrimPrefix(strings.TrimPrefix(l, "#"), " ")
				prev := strings.TrimSpace(lines[j-1])
				if inOutput {
					doc.outputs[len(doc.outputs)-1].text += "\n" + text
					continue
				}
				if prev == "" || j == start+1 || strings.HasPrefix(prev, "#") {
					continue // a remark of its own, not an output
				}
				doc.outputs = append(doc.outputs, shownOutput{line: j + 1, after: after, text: text})
				inOutput = true
			case strings.TrimSpace(l) != "":
				if inOutput {
					after, inOutput = j, false
				}
				script[j] = l
			default:
				inOutput = false
			}
		}
		lastRunBlockEnd, lastRunBlockStart = end, start+1
	}
	if strings.TrimSpace(lines[0]) != "" && !strings.HasPrefix(lines[0], "#") {
		return doc, fmt.Errorf("README.md:1 must not be a command: the script's prelude takes its line")
	}
	script[0] = readmePrelude
	doc.script = strings.Join(script, "\n")
	return doc, nil
}

// skipped reports whether the block fenced at line start is marked not to
// run: the line before its fence (blank lines between allowed) is a
// readmeNotRun comment.
func skipped(lines []string, start int) bool {
	for j := start - 1; j >= 0; j-- {
		if l := strings.TrimSpace(lines[j]); l != "" {
			return strings.HasPrefix(l, readmeNotRun)
		}
	}
	return false
}

// commandOutput is what the command on README line `line` wrote.
type commandOutput struct {
	line int
	text string
}

// splitByLine cuts the script's stdout at the marks the prelude's DEBUG trap
// writes before each command.
func splitByLine(out string) []commandOutput {
	var outs []commandOutput
	for _, part := range strings.Split(out, "\036")[1:] {
		num, text, _ := strings.Cut(part, "\037")
		n, _ := strconv.Atoi(num)
		outs = append(outs, commandOutput{line: n, text: text})
	}
	return outs
}

// outputBefore is the output of the last command that ran on a README line
// between after and before, and that line (a pipeline's commands are marked
// once each, under one line).
func outputBefore(outs []commandOutput, after, before int) (int, string, bool) {
	end := -1
	for i := len(outs) - 1; i >= 0; i-- {
		if outs[i].line > after && outs[i].line < before {
			end = i
			break
		}
	}
	if end < 0 {
		return 0, "", false
	}
	line := outs[end].line
	start := end
	for start > 0 && outs[start-1].line == line {
		start--
	}
	var b strings.Builder
	for _, o := range outs[start : end+1] {
		b.WriteString(o.text)
	}
	return line, b.String(), true
}

var (
	whitespace  = regexp.MustCompile(`\s+`)
	placeholder = regexp.MustCompile(`<[^<>]+>`)
)

// matchesShown reports whether got is what the README shows as want:
// whitespace ignored, "…" any text, a <placeholder> any non-empty text.
func matchesShown(want, got string) bool {
	want = whitespace.ReplaceAllString(want, "")
	var re strings.Builder
	re.WriteString(`(?s)^`)
	for i, part := range strings.Split(want, "…") {
		if i > 0 {
			re.WriteString(`.*?`)
		}
		last := 0
		for _, m := range placeholder.FindAllStringIndex(part, -1) {
			re.WriteString(regexp.QuoteMeta(part[last:m[0]]))
			re.WriteString(`.+?`)
			last = m[1]
		}
		re.WriteString(regexp.QuoteMeta(part[last:]))
	}
	re.WriteString(`$`)
	return regexp.MustCompile(re.String()).MatchString(whitespace.ReplaceAllString(got, ""))
}

func tail(outs []commandOutput) string {
	if len(outs) == 0 {
		return ""
	}
	return outs[len(outs)-1].text
}

func TestREADMEOutputsMatch(t *testing.T) {
	for _, c := range []struct {
		want, got string
		ok        bool
	}{
		{`{"Status":"OK","Message":"<developer id>","Meta":null}`, `{"Status":"OK","Message":"65f0a1","Meta":null}` + "\n", true},
		{`{"Status":"OK","Message":"<developer id>","Meta":null}`, `{"Status":"OK","Message":"","Meta":null}`, false},
		{`{"Status":"OK",…}`, `{"Status":"OK","Message":"x"}`, true},
		{`{"Status":"OK",…}`, `{"Status":"Error","Message":"x"}`, false},
		{"X-Key-Id: <hash>\nX-Developer-Policies: pol-gold", "X-Key-Id: ab12\r\nX-Developer-Policies: pol-gold\r\n", true},
		{`{"recorded":42}`, `{"recorded":41}`, false},
		{`a.b`, `axb`, false}, // no regular expression leaks through
	} {
		if got := matchesShown(c.want, c.got); got != c.ok {
			t.Errorf("matchesShown(%q, %q) = %v", c.want, c.got, got)
		}
	}
}
