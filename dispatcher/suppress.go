package dispatcher

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/fanoutdev/fanout/campaigns"
	"github.com/fanoutdev/fanout/recipients"
)

// loadSuppression reads the spec's suppression list and any extra files:
// one phone number or email per line (a CSV's first column works too; a
// header line, blank lines and lines starting with # are ignored).
// Addresses are normalised like recipients, so "0803…" suppresses
// "+234803…". The set holds the addresses' hashes.
func loadSuppression(spec campaigns.Spec, extra []string) (*hashSet, error) {
	set := newHashSet(0)
	var files []string
	if spec.Suppress != "" {
		files = append(files, spec.Resolve(spec.Suppress))
	}
	files = append(files, extra...)
	for i, path := range files {
		if err := readSuppression(spec, path, set); err != nil {
			if i == 0 && spec.Suppress != "" {
				return nil, spec.Errorf("suppress", "suppression list %s: %v", path, err)
			}
			return nil, fmt.Errorf("suppression list %s: %w", path, err)
		}
	}
	return set, nil
}

func readSuppression(spec campaigns.Spec, path string, set *hashSet) error {
	f, err := os.Open(path)
	if err != nil {
		return err
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
		if addr, err := recipients.Normalize(spec, line); err == nil {
			set.Add(addrHash(addr))
		}
	}
	return sc.Err()
}
