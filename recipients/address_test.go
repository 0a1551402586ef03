package recipients

import (
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nyaruka/phonenumbers"
)

// Nigerian numbers arrive as 0803…, 234803… and +234803…, with spaces, NBSP,
// dashes and full-width digits: all are one E.164 number, and junk is
// refused with the value in the reason.
func TestNormalizePhone(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, raw, region, want string
		wantErr                 bool
	}{
		{"national", "08031234567", "NG", "+2348031234567", false},
		{"international", "+2348031234567", "NG", "+2348031234567", false},
		{"country code without plus", "2348031234567", "NG", "+2348031234567", false},
		{"spaces", "0803 123 4567", "NG", "+2348031234567", false},
		{"nbsp and dashes", "0803\u00a0123-4567", "NG", "+2348031234567", false},
		{"zero width", "0803\u200b1234567", "NG", "+2348031234567", false},
		{"full width", "０８０３１２３４５６７", "NG", "+2348031234567", false},
		{"brackets", "(0803) 123.4567", "NG", "+2348031234567", false},
		{"foreign number in NG campaign", "+447911123456", "NG", "+447911123456", false},
		{"other region", "07911 123456", "GB", "+447911123456", false},
		{"too short", "12345", "NG", "", true},
		{"letters", "abc", "NG", "", true},
		{"empty", "", "NG", "", true},
		{"formula", "=1+2", "NG", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := NormalizePhone(tc.raw, tc.region)
			if (err != nil) != tc.wantErr {
				t.Fatalf("NormalizePhone(%q) error = %v, want error %v", tc.raw, err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalidAddress) {
				t.Errorf("error %v does not wrap ErrInvalidAddress", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("NormalizePhone(%q) (-want +got):\n%s", tc.raw, diff)
			}
			fast, ferr := NewPhoneNormalizer(tc.region).Normalize(tc.raw)
			if fast != got || (ferr == nil) != (err == nil) {
				t.Errorf("PhoneNormalizer.Normalize(%q) = %q, %v; NormalizePhone = %q, %v", tc.raw, fast, ferr, got, err)
			}
		})
	}
}

func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ raw, want string }{
		{"Ada@Example.com", "ada@example.com"},
		{"  ada@example.com ", "ada@example.com"},
		{"ada@example", ""},
		{"Ada <ada@example.com>", ""},
		{"not an email", ""},
		{"", ""},
	} {
		got, err := NormalizeEmail(tc.raw)
		if (err != nil) != (tc.want == "") || got != tc.want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", tc.raw, got, err, tc.want)
		}
	}
}

// The fast normaliser's cache must never change an answer: for random
// numbers in many regions and every way people write them, it returns
// exactly what NormalizePhone returns. FANOUT_PHONE_EQUIV_N sets the numbers
// per region (default 1500; the figure in docs/benchmarks.md used 200000).
func TestPhoneNormalizerMatchesPhonenumbers(t *testing.T) {
	t.Parallel()
	n := 1500
	if v, err := strconv.Atoi(os.Getenv("FANOUT_PHONE_EQUIV_N")); err == nil && v > 0 {
		n = v
	}
	regions := []string{"NG", "GH", "KE", "ZA", "EG", "GB", "US", "CA", "IN", "DE", "FR", "IT", "BR", "AR", "MX", "RU", "KZ", "CN", "AU", "JP"}
	for _, region := range regions {
		t.Run(region, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(uint64(len(region)), uint64(region[0])<<8|uint64(region[1])))
			gen := newPhoneGen(region, rng)
			p := NewPhoneNormalizer(region)
			bad := 0
			for i := 0; i < n; i++ {
				raw := gen.next()
				want, werr := NormalizePhone(raw, region)
				got, gerr := p.Normalize(raw)
				if got != want || (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
					bad++
					if bad <= 10 {
						t.Errorf("Normalize(%q) = %q, %v; NormalizePhone = %q, %v", raw, got, gerr, want, werr)
					}
				}
			}
			if p.plan != nil && p.Hits == 0 && region == "NG" {
				t.Errorf("%s: the cache was never used (%d misses)", region, p.Misses)
			}
			t.Logf("%s: %d numbers, cache hits %d, misses %d, plan %+v", region, n, p.Hits, p.Misses, p.plan)
		})
	}
}

// phoneGen writes numbers of a region the ways spreadsheets hold them:
// national with its prefix, with the country code with and without '+',
// bare national significant numbers, and random digit strings.
type phoneGen struct {
	rng  *rand.Rand
	cc   string
	np   string
	nsns []string
}

func newPhoneGen(region string, rng *rand.Rand) *phoneGen {
	g := &phoneGen{rng: rng, cc: strconv.Itoa(phonenumbers.GetCountryCodeForRegion(region)), np: "0"}
	if region == "US" || region == "CA" {
		g.np = "1"
	}
	for _, typ := range []phonenumbers.PhoneNumberType{phonenumbers.MOBILE, phonenumbers.FIXED_LINE,
		phonenumbers.TOLL_FREE, phonenumbers.PREMIUM_RATE, phonenumbers.VOIP, phonenumbers.UAN, phonenumbers.PERSONAL_NUMBER} {
		if ex := phonenumbers.GetExampleNumberForType(region, typ); ex != nil {
			g.nsns = append(g.nsns, phonenumbers.GetNationalSignificantNumber(ex))
		}
	}
	if len(g.nsns) == 0 {
		g.nsns = []string{"8031234567"}
	}
	return g
}

func (g *phoneGen) digits(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteByte(byte('0' + g.rng.IntN(10)))
	}
	return b.String()
}

func (g *phoneGen) next() string {
	nsn := []byte(g.nsns[g.rng.IntN(len(g.nsns))])
	// Change a random number of trailing digits, sometimes the length too.
	for i := len(nsn) - 1 - g.rng.IntN(len(nsn)); i < len(nsn); i++ {
		nsn[i] = byte('0' + g.rng.IntN(10))
	}
	switch g.rng.IntN(8) {
	case 0:
		nsn = append(nsn, byte('0'+g.rng.IntN(10)))
	case 1:
		if len(nsn) > 3 {
			nsn = nsn[:len(nsn)-1]
		}
	}
	return g.separate(g.format(string(nsn)))
}

// separate sometimes writes a number the way people type it: with spaces,
// dashes, dots, brackets or a no-break space between digits.
func (g *phoneGen) separate(s string) string {
	if g.rng.IntN(3) != 0 || len(s) < 4 {
		return s
	}
	seps := []string{" ", "-", ".", " (", ") ", "\u00a0", "/"}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if i > 0 && g.rng.IntN(4) == 0 {
			b.WriteString(seps[g.rng.IntN(len(seps))])
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func (g *phoneGen) format(s string) string {
	switch g.rng.IntN(9) {
	case 0, 1:
		return g.np + s
	case 2:
		return g.cc + s
	case 3, 4:
		return "+" + g.cc + s
	case 5:
		return s
	case 6:
		return "+" + s
	case 7:
		return g.digits(3 + g.rng.IntN(14))
	default:
		return "+" + g.digits(3+g.rng.IntN(14))
	}
}

// Spreadsheet cells starting with a formula trigger are escaped.
func TestEscapeCell(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"=1+2": "'=1+2", "+2348031234567": "'+2348031234567", "-1": "'-1", "@SUM(A1)": "'@SUM(A1)",
		"\tx": "'\tx", "\rx": "'\rx", "\x00x": "'\x00x", "plain": "plain", "": "",
	} {
		if got := EscapeCell(in); got != want {
			t.Errorf("EscapeCell(%q) = %q, want %q", in, got, want)
		}
	}
}

// A number typed with separators is the same cache entry as its plain
// digits: files often mix both, and a miss costs a full parse.
func TestPhoneNormalizerCachesSeparatedNumbers(t *testing.T) {
	t.Parallel()
	p := NewPhoneNormalizer("NG")
	for _, raw := range []string{"08031234567", "0803 123 4568", "(0803) 123-4569", "+234 803 123 4560", "234-803-123-4561"} {
		got, err := p.Normalize(raw)
		want, werr := NormalizePhone(raw, "NG")
		if got != want || err != nil || werr != nil {
			t.Fatalf("Normalize(%q) = %q, %v; NormalizePhone = %q, %v", raw, got, err, want, werr)
		}
	}
	// The three ways of writing the country (0, +234, 234) each miss once.
	if p.Hits != 2 || p.Misses != 3 {
		t.Errorf("hits %d, misses %d; want 2 hits, 3 misses", p.Hits, p.Misses)
	}
}
