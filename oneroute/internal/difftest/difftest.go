// Package difftest renders the difference between two values for table
// tests, in the "(-want +got)" form of go-cmp's cmp.Diff, which fanout's
// go.mod does not require yet. Values are compared with reflect.DeepEqual
// and shown as indented JSON (or %#v when they do not marshal).
//
//	if d := difftest.Diff(want, got); d != "" {
//		t.Errorf("mismatch (-want +got):\n%s", d)
//	}
package difftest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// Diff returns "" when want and got are deeply equal, and otherwise a
// line diff of their renderings: "-" lines only in want, "+" only in got.
func Diff(want, got any) string {
	if reflect.DeepEqual(want, got) {
		return ""
	}
	a, b := render(want), render(got)
	if a == b {
		a, b = fmt.Sprintf("%#v", want), fmt.Sprintf("%#v", got)
	}
	return lines(strings.Split(a, "\n"), strings.Split(b, "\n"))
}

func render(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprintf("%#v", v)
	}
	return fmt.Sprintf("%T ", v) + string(b)
}

// lines is a longest-common-subsequence line diff; test values are small.
func lines(a, b []string) string {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			out.WriteString("  " + a[i] + "\n")
			i, j = i+1, j+1
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			out.WriteString("+ " + b[j] + "\n")
			j++
		default:
			out.WriteString("- " + a[i] + "\n")
			i++
		}
	}
	return out.String()
}
