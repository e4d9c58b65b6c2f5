package plane

import "sync"

// Workers run the crypto of a batch in parallel: the caller splits the
// batch into ranges, the workers (and the caller) take one each, and the
// caller waits for all. The task queue is bounded; a caller that finds it
// full does the work itself.
type Workers struct {
	n     int
	tasks chan task
	wg    sync.WaitGroup
}

type task struct {
	f      func(i int)
	lo, hi int
	done   *sync.WaitGroup
}

// NewWorkers starts n workers.
func NewWorkers(n int) *Workers {
	w := &Workers{n: max(n, 1), tasks: make(chan task, 4*max(n, 1))}
	for i := 0; i < w.n; i++ {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for t := range w.tasks {
				for i := t.lo; i < t.hi; i++ {
					t.f(i)
				}
				t.done.Done()
			}
		}()
	}
	return w
}

// Run calls f(0) ... f(n-1) in parallel and returns when all returned.
// wg is the caller's, reused across batches.
func (w *Workers) Run(n int, f func(i int), wg *sync.WaitGroup) {
	if n <= 2 || w.n == 1 {
		for i := 0; i < n; i++ {
			f(i)
		}
		return
	}
	parts := min(w.n+1, n)
	size := (n + parts - 1) / parts
	lo := size // the caller does [0, size)
	for lo < n {
		hi := min(lo+size, n)
		wg.Add(1)
		select {
		case w.tasks <- task{f: f, lo: lo, hi: hi, done: wg}:
		default:
			for i := lo; i < hi; i++ {
				f(i)
			}
			wg.Done()
		}
		lo = hi
	}
	for i := 0; i < min(size, n); i++ {
		f(i)
	}
	wg.Wait()
}

// Start hands f(0) ... f(n-1) to the workers and returns; wg is done when
// all returned. When the task queue is full the caller does the rest
// itself, which slows the reader down to what the workers manage.
func (w *Workers) Start(n int, f func(i int), wg *sync.WaitGroup) {
	if n == 0 {
		return
	}
	parts := min(w.n, n)
	size := (n + parts - 1) / parts
	for lo := 0; lo < n; lo += size {
		hi := min(lo+size, n)
		wg.Add(1)
		select {
		case w.tasks <- task{f: f, lo: lo, hi: hi, done: wg}:
		default:
			for i := lo; i < hi; i++ {
				f(i)
			}
			wg.Done()
		}
	}
}

// Close stops the workers.
func (w *Workers) Close() {
	close(w.tasks)
	w.wg.Wait()
}
