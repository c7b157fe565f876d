package node

import "sync"

// group runs actors until the first returns, then stops all of them in the
// reverse of the order they were added and waits for every one: shutdown is
// start-up backwards. (After oklog/run, with ordered interrupts.)
type group struct{ actors []actor }

type actor struct {
	run  func() error
	stop func()
}

func (g *group) add(run func() error, stop func()) { g.actors = append(g.actors, actor{run, stop}) }

// run returns the error of the actor that ended first.
func (g *group) run() error {
	errs := make(chan error, len(g.actors))
	var wg sync.WaitGroup
	for _, a := range g.actors {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- a.run() }()
	}
	err := <-errs
	for i := len(g.actors) - 1; i >= 0; i-- {
		g.actors[i].stop()
	}
	wg.Wait()
	return err
}
