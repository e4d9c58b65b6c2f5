package schema

import (
	"slices"
	"testing"

	"github.com/sitesec/sitesec/services/trace"
)

// The flags the schema accepts must be exactly the ones the daemons'
// tracers accept, or a committed flag would be refused at apply time.
func TestTraceFlagsMatchTracer(t *testing.T) {
	for _, c := range []struct {
		name   string
		schema *Type
		tracer []trace.Flag
	}{
		{"kmd", kmdFlags, trace.KMDFlags},
		{"pkid", pkidFlags, trace.PKIDFlags},
		{"processes", procFlags, trace.ProcessFlags},
	} {
		var want []string
		for _, f := range c.tracer {
			want = append(want, string(f))
		}
		got := slices.Clone(c.schema.Values)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: schema flags %v, tracer flags %v", c.name, got, want)
		}
	}
}
