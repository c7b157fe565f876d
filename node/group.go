package node

// group runs actors until the first returns, then stops them one at a time in
// the reverse of the order they were added, each once every actor added after
// it has ended: shutdown is start-up backwards, and an actor finishes what it
// has in hand (the service, a command waiting for its event to be applied)
// while the actors it needs (the follower) still run. (After oklog/run, with
// ordered interrupts.)
type group struct{ actors []actor }

type actor struct {
	run  func() error
	stop func()
}

func (g *group) add(run func() error, stop func()) { g.actors = append(g.actors, actor{run, stop}) }

// run returns the error of the actor that ended first, once all have ended.
func (g *group) run() error {
	errs := make(chan error, len(g.actors))
	ended := make([]chan struct{}, len(g.actors))
	for i, a := range g.actors {
		ended[i] = make(chan struct{})
		go func() { defer close(ended[i]); errs <- a.run() }()
	}
	err := <-errs
	for i := len(g.actors) - 1; i >= 0; i-- {
		g.actors[i].stop()
		<-ended[i]
	}
	return err
}
