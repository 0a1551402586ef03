package recipients

import (
	"strings"
	"testing"
)

// A header that does not look like column names is not repeated in errors.
func TestColumnsTextHidesNonHeaders(t *testing.T) {
	t.Parallel()
	if got := ColumnsText([]string{"root:$6$salt:19000:0:99999:7:::"}); strings.Contains(got, "salt") {
		t.Errorf("repeats a non-header: %q", got)
	}
	if got := ColumnsText([]string{"phone", "First Name", "Amount (₦)"}); got != "its columns: phone, First Name, Amount (₦)" {
		t.Errorf("got %q", got)
	}
}
