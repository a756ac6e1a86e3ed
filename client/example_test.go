package client_test

import (
	"context"
	"fmt"
	"time"

	"github.com/weft-edge/weft/client"
)

// exampleTB runs a stack outside a test: failures panic, cleanups run at close.
type exampleTB struct{ cleanups []func() }

func (e *exampleTB) Helper()                           {}
func (e *exampleTB) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (e *exampleTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (e *exampleTB) Errorf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (e *exampleTB) Cleanup(f func())                  { e.cleanups = append(e.cleanups, f) }
func (e *exampleTB) close() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
}

// Connect, read an event and render it from the Store: the sender was attached to the event
// because this connection had never been sent that user.
func Example() {
	// A whole weft in this process: NATS, the reference origin, an edge node.
	env := &exampleTB{}
	defer env.close()
	weft := newStack(env, "tiny", nil)
	ch, members := weft.busyChannel(3)
	me, alice := members[0], members[1]

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{URL: weft.url, Token: weft.token(me)})
	if err != nil {
		fmt.Println("dial:", err)
		return
	}
	defer c.Close()
	fmt.Println("booted as", c.Boot().Self.Name)

	weft.post(ch, alice, "standup in 5")
	for ev := range c.Events() {
		if ev.Type != client.EventMessage {
			continue
		}
		sender, known := c.User(ev.UserID) // no users.info: it came with the event
		channel, _ := c.Channel(ev.ChannelID)
		fmt.Printf("#%s %s: %s (known: %v)\n", channel.Name, sender.Name, ev.Text, known)
		break
	}
	// Output:
	// booted as laszlo.toth
	// #general daiki.nakamura: standup in 5 (known: true)
}
