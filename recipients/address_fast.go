package recipients

import (
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// PhoneNormalizer is NormalizePhone for one default region, made fast for
// files of millions of numbers: it gives exactly NormalizePhone's answer, and
// answers most numbers from a small cache instead of a full parse.
//
// Why the cache is exact. Every decision phonenumbers takes on a string of
// digits is either a regular expression matched against the whole national
// number (validity, possible lengths, the country-code heuristics) or a
// prefix match (national prefix, international prefix, leading digits). At
// construction the normaliser reads the region's metadata (and that of every
// region sharing its country code) and computes, from the expressions' syntax
// trees, T: the number of trailing characters that every full-match pattern
// leaves unconstrained (matched by \d), and the longest prefix any prefix
// pattern can match. For inputs of one length L, the answer then depends only
// on the first L-T characters, and the E.164 result ends with the input's
// last T digits. So the cache maps (L, first L-T characters) to the result's
// first part. Only valid results in the region's own country code are
// cached, and only for inputs that are plain ASCII digits with an optional
// leading '+' once cleanPhone has dropped their separators (NormalizePhone
// parses that cleaned string, so it is the cache's input) and that do not
// start with the region's international dialling prefix; everything else
// takes the full parse. TestPhoneNormalizerMatchesPhonenumbers
// checks the equivalence on random numbers for many regions.
//
// A PhoneNormalizer is not safe for concurrent use: give each goroutine its own.
type PhoneNormalizer struct {
	region string
	plan   *phonePlan
	cache  [maxCachedLen + 1]map[string]string
	size   int
	// Hits and Misses count cache use, for benchmarks.
	Hits, Misses int
}

// maxCachedLen is the longest input the cache handles: '+' and 15 digits.
const maxCachedLen = 16

// maxCacheEntries bounds the cache; past it, new prefixes take the full parse.
const maxCacheEntries = 1 << 16

// NewPhoneNormalizer returns a normaliser for numbers read in region (ISO
// 3166, e.g. "NG").
func NewPhoneNormalizer(region string) *PhoneNormalizer {
	return &PhoneNormalizer{region: region, plan: planFor(region)}
}

// Normalize returns NormalizePhone(raw, region).
func (p *PhoneNormalizer) Normalize(raw string) (string, error) {
	pl := p.plan
	s, ok := plainDigits(raw)
	if !ok {
		// "0803 123 4567", "(0803) 123-4567": NormalizePhone parses the
		// cleaned string, so the cache answers for it as well.
		s, ok = plainDigits(cleanPhone(raw))
	}
	if !ok || pl == nil || len(s) > maxCachedLen {
		return NormalizePhone(raw, p.region)
	}
	k := len(s) - pl.tail
	if k < pl.minKey || pl.idd != nil && s[0] != '+' && pl.idd.MatchString(s) {
		return NormalizePhone(raw, p.region)
	}
	if m := p.cache[len(s)]; m != nil {
		if head, ok := m[s[:k]]; ok {
			p.Hits++
			return head + s[k:], nil
		}
	}
	p.Misses++
	out, err := NormalizePhone(s, p.region)
	if err != nil {
		// Build the error from raw, as NormalizePhone(raw) would.
		return NormalizePhone(raw, p.region)
	}
	if p.size < maxCacheEntries && strings.HasPrefix(out, pl.plusCC) && len(out) > pl.tail &&
		out[len(out)-pl.tail:] == s[k:] {
		m := p.cache[len(s)]
		if m == nil {
			m = make(map[string]string)
			p.cache[len(s)] = m
		}
		m[strings.Clone(s[:k])] = out[:len(out)-pl.tail]
		p.size++
	}
	return out, nil
}

// plainDigits returns raw without surrounding spaces when it is only ASCII
// digits with an optional leading '+', which cleanPhone leaves unchanged.
func plainDigits(raw string) (string, bool) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", false
	}
	i := 0
	if s[0] == '+' {
		i = 1
	}
	if i == len(s) {
		return "", false
	}
	for ; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", false
		}
	}
	return s, true
}

// phonePlan is what the analysis of a region's metadata allows.
type phonePlan struct {
	plusCC string // "+234"
	// tail is T: trailing characters no full-match pattern constrains.
	tail int
	// minKey is the shortest key (input less its tail) that covers every
	// prefix pattern, the country code and a '+'.
	minKey int
	idd    *regexp.Regexp
}

var (
	planMu    sync.Mutex
	planCache = map[string]*phonePlan{}
)

// planFor analyses a region's metadata once per process; nil means no fast
// path (unknown region, or patterns the analysis cannot bound).
func planFor(region string) *phonePlan {
	planMu.Lock()
	defer planMu.Unlock()
	if p, ok := planCache[region]; ok {
		return p
	}
	p := analyseRegion(region)
	planCache[region] = p
	return p
}

func analyseRegion(region string) *phonePlan {
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		return nil
	}
	cc := phonenumbers.GetCountryCodeForRegion(region)
	if cc == 0 {
		return nil
	}
	regions := map[string]bool{}
	for _, r := range phonenumbers.GetRegionCodesForCountryCode(cc) {
		regions[r] = true
	}
	tail := 1 << 30
	maxPrefix := 0
	var idd string
	found := false
	for _, m := range coll.GetMetadata() {
		if !regions[m.GetId()] || int(m.GetCountryCode()) != cc {
			continue
		}
		found = true
		for _, d := range []*phonenumbers.PhoneNumberDesc{m.GetGeneralDesc(), m.GetFixedLine(), m.GetMobile(),
			m.GetTollFree(), m.GetPremiumRate(), m.GetSharedCost(), m.GetPersonalNumber(), m.GetVoip(),
			m.GetPager(), m.GetUan(), m.GetVoicemail()} {
			if d == nil || d.GetNationalNumberPattern() == "" {
				continue
			}
			ft, ok := patternFreeTail(d.GetNationalNumberPattern())
			if !ok {
				return nil
			}
			tail = min(tail, ft)
		}
		for _, pre := range []string{m.GetNationalPrefixForParsing(), m.GetLeadingDigits()} {
			if pre == "" {
				continue
			}
			n, ok := patternMaxLen(pre)
			if !ok {
				return nil
			}
			maxPrefix = max(maxPrefix, n)
		}
		if m.GetId() == region {
			idd = m.GetInternationalPrefix()
		}
	}
	if !found || tail <= 0 || tail >= 1<<30 {
		return nil
	}
	p := &phonePlan{plusCC: "+" + strconv.Itoa(cc), tail: tail}
	// Room for '+', the country code (at most 3 digits) and the national
	// prefix or leading digits, all inside the key.
	p.minKey = 1 + 3 + maxPrefix
	if idd != "" {
		re, err := regexp.Compile("^(?:" + idd + ")")
		if err != nil {
			return nil
		}
		p.idd = re
	}
	return p
}

// patternFreeTail parses a full-match pattern and returns a lower bound on
// the number of trailing characters of any digit string it matches that are
// matched by an unconstrained digit class.
func patternFreeTail(pattern string) (int, bool) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return 0, false
	}
	a := analyse(re)
	if a.impossible {
		return 1 << 30, true // never matches a digit string: no constraint
	}
	return a.tail, true
}

// patternMaxLen is the longest string a prefix pattern can match.
func patternMaxLen(pattern string) (int, bool) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return 0, false
	}
	a := analyse(re)
	if a.maxLen < 0 {
		return 0, false
	}
	return a.maxLen, true
}

// reInfo summarises what a regular expression can match on digit strings.
type reInfo struct {
	minLen, maxLen int // maxLen -1: unbounded
	// free: every character it matches is matched by [0-9] (or any char).
	free bool
	// tail: lower bound of trailing free characters of any match.
	tail int
	// impossible: it matches no string of digits.
	impossible bool
}

const inf = 1 << 30

func isDigitClass(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return true
	case syntax.OpCharClass:
		// Covers every digit: unconstrained for digit strings.
		for d := '0'; d <= '9'; d++ {
			in := false
			for i := 0; i+1 < len(re.Rune); i += 2 {
				if d >= re.Rune[i] && d <= re.Rune[i+1] {
					in = true
					break
				}
			}
			if !in {
				return false
			}
		}
		return true
	}
	return false
}

func classHasDigit(re *syntax.Regexp) bool {
	for i := 0; i+1 < len(re.Rune); i += 2 {
		if re.Rune[i] <= '9' && re.Rune[i+1] >= '0' {
			return true
		}
	}
	return false
}

func addLen(a, b int) int {
	if a < 0 || b < 0 {
		return -1
	}
	return a + b
}

func mulLen(a, n int) int {
	if a < 0 || n < 0 {
		return -1
	}
	return a * n
}

func analyse(re *syntax.Regexp) reInfo {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return reInfo{free: true}
	case syntax.OpNoMatch:
		return reInfo{impossible: true, tail: inf}
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			if r < '0' || r > '9' {
				return reInfo{impossible: true, tail: inf, minLen: len(re.Rune), maxLen: len(re.Rune)}
			}
		}
		return reInfo{minLen: len(re.Rune), maxLen: len(re.Rune)}
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		if isDigitClass(re) {
			return reInfo{minLen: 1, maxLen: 1, free: true, tail: 1}
		}
		if re.Op == syntax.OpCharClass && !classHasDigit(re) {
			return reInfo{impossible: true, tail: inf, minLen: 1, maxLen: 1}
		}
		return reInfo{minLen: 1, maxLen: 1}
	case syntax.OpCapture:
		return analyse(re.Sub[0])
	case syntax.OpConcat:
		return analyseSeq(re.Sub)
	case syntax.OpAlternate:
		out := reInfo{minLen: inf, free: true, tail: inf, impossible: true}
		for _, s := range re.Sub {
			a := analyse(s)
			if a.impossible {
				continue
			}
			out.impossible = false
			out.minLen = min(out.minLen, a.minLen)
			if out.maxLen >= 0 && (a.maxLen < 0 || a.maxLen > out.maxLen) {
				out.maxLen = a.maxLen
			}
			out.free = out.free && a.free
			out.tail = min(out.tail, a.tail)
		}
		if out.impossible {
			return reInfo{impossible: true, tail: inf}
		}
		return out
	case syntax.OpQuest, syntax.OpStar, syntax.OpPlus, syntax.OpRepeat:
		lo, hi := 0, -1
		switch re.Op {
		case syntax.OpQuest:
			hi = 1
		case syntax.OpPlus:
			lo = 1
		case syntax.OpRepeat:
			lo, hi = re.Min, re.Max
		}
		a := analyse(re.Sub[0])
		if a.impossible {
			if lo == 0 {
				return reInfo{free: true} // only the empty repetition can match
			}
			return reInfo{impossible: true, tail: inf}
		}
		out := reInfo{minLen: a.minLen * lo, maxLen: mulLen(a.maxLen, hi), free: a.free}
		if a.maxLen == 0 {
			out.maxLen = 0
		}
		switch {
		case a.free:
			out.tail = out.minLen
		case lo == 0:
			out.tail = 0 // may match nothing: the caller looks further left
		default:
			out.tail = a.tail
		}
		return out
	}
	// Anything else (back references are not in RE2 syntax): be safe.
	return reInfo{minLen: 0, maxLen: -1, tail: 0}
}

// analyseSeq analyses a concatenation. The trailing free count walks from
// the right: free elements add their shortest length; the first constrained
// element adds its own tail. An element that can match nothing also lets
// the tail come from further left, so both paths are taken and the smaller
// kept.
func analyseSeq(subs []*syntax.Regexp) reInfo {
	out := reInfo{free: true}
	infos := make([]reInfo, len(subs))
	for i, s := range subs {
		a := analyse(s)
		infos[i] = a
		if a.impossible {
			return reInfo{impossible: true, tail: inf}
		}
		out.minLen += a.minLen
		out.maxLen = addLen(out.maxLen, a.maxLen)
		out.free = out.free && a.free
	}
	out.tail = seqTail(infos)
	return out
}

func seqTail(infos []reInfo) int {
	acc := 0
	for i := len(infos) - 1; i >= 0; i-- {
		a := infos[i]
		if a.free {
			acc += a.minLen
			continue
		}
		t := acc + a.tail
		if a.minLen == 0 {
			t = min(t, acc+seqTail(infos[:i]))
		}
		return t
	}
	return acc
}
