package plane

import (
	"fmt"
	"hash/fnv"
	"strings"
)

// maxIfName is IFNAMSIZ - 1.
const maxIfName = 15

// LinuxName maps a Junos inside interface (ms-1/2/0.1, sp-1/2/0.10) to a
// valid Linux interface name: '/' becomes '-' and the unit separator 'u'
// (ms-1-2-0u1). A name longer than 15 characters is cut and given a hash
// of the whole, so two long names never collide in practice
// (ms-10-20-300u1000 -> ms-10-20-3~1a2b).
func LinuxName(junos string) string {
	n := strings.NewReplacer("/", "-", ".", "u", ":", "-", " ", "-").Replace(junos)
	if len(n) <= maxIfName {
		return n
	}
	h := fnv.New32a()
	h.Write([]byte(junos))
	return fmt.Sprintf("%s~%04x", n[:maxIfName-5], h.Sum32()&0xffff)
}
