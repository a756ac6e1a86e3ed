package proxy

// setupStage names the points of a tunnel's setup that a setuptrace build times; each stage's
// figure is the time since the one before.
type setupStage int

const (
	stageAccepted setupStage = iota // the connection accepted
	stageHeadIn                     // the first bytes of its request arrived
	stageHeadRead                   // the request's head parsed
	stageAuthed                     // its token verified
	stageRouted                     // the owner chosen and the pacers passed
	stageUpstream                   // a connection to the edge in hand (a spare, or dialed)
	stageSent                       // the request written to the edge
	stageEdge                       // the edge's answer read
	stageAnswered                   // the 101 written to the client
	stageCount
)
