package bus

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Replies larger than one NATS message (the server's max_payload, 1 MiB
// by default) travel in chunks: a show command's reply with 10,000 IKE
// SAs, kmd's answer to a restarted fwdd's SA sync. Nothing changes for the
// handler or the caller; a reply that fits travels as before. (Large
// requests go in parts, message.go.)
//
// A large reply: the handler's side keeps the marshalled reply and sends
// its first chunk with the header Sitesec-Chunks "ID N SIZE"; the caller
// fetches chunks 1..N-1 with requests on the same subject carrying
// Sitesec-Chunk "ID I" (each answered with the chunk, or an error), and
// checks that SIZE bytes arrived. A reply not fetched in time (the
// caller's budget, at most chunkKeep) is dropped.
//
// The chunks of one reply go to the same subject, so with several
// instances serving it in one queue group they could land on different
// instances: each sitesec daemon runs once per router.
const (
	HeaderChunks = "Sitesec-Chunks"
	HeaderChunk  = "Sitesec-Chunk"
	// chunkKeep bounds how long a chunked reply is kept.
	chunkKeep = 30 * time.Second
	// chunkHeadroom is left of max_payload for the headers.
	chunkHeadroom = 4096
	// maxChunked bounds the size of one chunked message.
	maxChunked = 256 << 20
)

// chunkLimit is the largest body sent in one message.
func (c *Conn) chunkLimit() int {
	if c.maxChunk > 0 {
		return c.maxChunk
	}
	n := int(c.NC.MaxPayload()) - chunkHeadroom
	return max(n, 64<<10)
}

// pending holds the chunked replies of one Conn waiting to be fetched,
// by ID.
type pending struct {
	mu      sync.Mutex
	replies map[string]*heldReply
}

type heldReply struct {
	data  []byte
	size  int // chunk size
	timer *time.Timer
}

func chunkID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// holdReply keeps data for its caller and returns the first message.
func (c *Conn) holdReply(out *nats.Msg, data []byte, keep time.Duration) {
	limit := c.chunkLimit()
	n := (len(data) + limit - 1) / limit
	id := chunkID()
	keep = min(max(keep, time.Second), chunkKeep)
	c.pend.mu.Lock()
	if c.pend.replies == nil {
		c.pend.replies = map[string]*heldReply{}
	}
	c.pend.replies[id] = &heldReply{data: data, size: limit, timer: time.AfterFunc(keep, func() {
		c.pend.mu.Lock()
		delete(c.pend.replies, id)
		c.pend.mu.Unlock()
	})}
	c.pend.mu.Unlock()
	out.Data = data[:limit]
	out.Header = nats.Header{HeaderChunks: []string{fmt.Sprintf("%s %d %d", id, n, len(data))}}
}

// serveChunk answers a request for chunk I of a held reply.
func (c *Conn) serveChunk(m *nats.Msg, h string) {
	id, is, _ := strings.Cut(h, " ")
	i, err := strconv.Atoi(is)
	c.pend.mu.Lock()
	r := c.pend.replies[id]
	var chunk []byte
	last := false
	if r != nil && err == nil && i > 0 && i*r.size < len(r.data) {
		end := min((i+1)*r.size, len(r.data))
		chunk = r.data[i*r.size : end]
		if last = end == len(r.data); last {
			r.timer.Stop()
			delete(c.pend.replies, id)
		}
	}
	c.pend.mu.Unlock()
	out := &nats.Msg{Subject: m.Reply, Data: chunk}
	if chunk == nil {
		out.Header = nats.Header{HeaderError: []string{"bus: no chunk " + headerValue(h) + " (expired or unknown)"}}
	}
	if m.Reply == "" {
		return
	}
	if err := c.NC.PublishMsg(out); err != nil {
		c.report(fmt.Errorf("bus: chunk on %s: %w", m.Subject, err))
	}
}

// fetchChunks completes a chunked reply whose first message is m.
func (c *Conn) fetchChunks(req *nats.Msg, m *nats.Msg, h string, fetch func(*nats.Msg) (*nats.Msg, error)) ([]byte, error) {
	f := strings.Fields(h)
	if len(f) != 3 {
		return nil, fmt.Errorf("bad %s header %q", HeaderChunks, h)
	}
	n, err1 := strconv.Atoi(f[1])
	size, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil || n < 2 || size <= len(m.Data) || size > maxChunked {
		return nil, fmt.Errorf("bad %s header %q", HeaderChunks, h)
	}
	data := make([]byte, 0, size)
	data = append(data, m.Data...)
	for i := 1; i < n; i++ {
		r, err := fetch(&nats.Msg{Subject: req.Subject, Header: nats.Header{
			HeaderChunk:   []string{f[0] + " " + strconv.Itoa(i)},
			HeaderTimeout: req.Header[HeaderTimeout],
		}})
		if err != nil {
			return nil, fmt.Errorf("chunk %d of %d: %w", i+1, n, err)
		}
		if e := r.Header.Get(HeaderError); e != "" {
			return nil, fmt.Errorf("chunk %d of %d: %s", i+1, n, e)
		}
		if len(data)+len(r.Data) > size {
			return nil, fmt.Errorf("chunk %d of %d: more than %d bytes", i+1, n, size)
		}
		data = append(data, r.Data...)
	}
	if len(data) != size {
		return nil, fmt.Errorf("%d of %d bytes in %d chunks", len(data), size, n)
	}
	return data, nil
}
