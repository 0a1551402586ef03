package dispatcher

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/fanoutdev/fanout/campaigns"
)

// loadSuppression reads the spec's suppression list: one phone number or
// email per line (a CSV's first column works too; a header line and blank
// lines are ignored). Addresses are normalised like recipients, so
// "0803…" suppresses "+234803…".
func loadSuppression(spec campaigns.Spec) (map[string]bool, error) {
	out := map[string]bool{}
	if spec.Suppress == "" {
		return out, nil
	}
	path := spec.Resolve(spec.Suppress)
	f, err := os.Open(path)
	if err != nil {
		return nil, spec.Errorf("suppress", "suppression list %s: %v", path, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		line = strings.TrimPrefix(line, "\ufeff")
		if i := strings.IndexAny(line, ",;\t"); i >= 0 {
			line = line[:i]
		}
		line = strings.Trim(line, `"' `)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if addr, err := spec.Normalize(line); err == nil {
			out[addr] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("suppression list %s: %w", path, err)
	}
	return out, nil
}
