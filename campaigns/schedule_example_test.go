package campaigns_test

import (
	"fmt"
	"time"

	"github.com/fanoutdev/fanout/campaigns"
)

// A window of 08:00 to 20:00 in Lagos, weekdays: a Friday evening send waits
// for Monday morning; a recipient in Nairobi gets the same hours in their
// own zone.
func ExampleWindow_NextOpening() {
	w := campaigns.Window{Start: "08:00", End: "20:00", Timezone: "Africa/Lagos", Days: []string{"mon", "tue", "wed", "thu", "fri"}}
	friday := time.Date(2026, 12, 4, 20, 30, 0, 0, time.UTC) // 21:30 in Lagos
	fmt.Println(w.Open(friday))
	fmt.Println(w.NextOpening(friday).Format(time.RFC3339))
	fmt.Println(w.In("Africa/Nairobi").NextOpening(friday).Format(time.RFC3339))
	// Output:
	// false
	// 2026-12-07T08:00:00+01:00
	// 2026-12-07T08:00:00+03:00
}
