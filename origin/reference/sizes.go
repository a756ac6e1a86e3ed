package reference

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Size is the shape of a synthetic world. Users and Channels are per team.
type Size struct {
	Name     string
	Teams    int
	Users    int
	Channels int
	// ChannelsPerUser is the mean number of channels a user is a member of, #general included.
	ChannelsPerUser float64
}

// The named sizes. giant is the largest team of the Flannel talk: 366,000 users.
var namedSizes = []Size{
	{Name: "tiny", Teams: 3, Users: 20, Channels: 8, ChannelsPerUser: 4},
	{Name: "small", Teams: 100, Users: 200, Channels: 30, ChannelsPerUser: 6},
	// 1.5k is the team size of the Flannel talk's first boot figure (7× smaller at 1.5K users).
	{Name: "1.5k", Teams: 1, Users: 1_500, Channels: 150, ChannelsPerUser: 10},
	{Name: "32k", Teams: 1, Users: 32_000, Channels: 3_200, ChannelsPerUser: 20},
	{Name: "giant", Teams: 1, Users: 366_000, Channels: 36_000, ChannelsPerUser: 14},
}

// SizeNames lists the names SizeByName knows, smallest first.
func SizeNames() []string {
	names := make([]string, len(namedSizes))
	for i, s := range namedSizes {
		names[i] = s.Name
	}
	return names
}

// SizeByName returns a named size: tiny (unit tests), small, 1.5k, 32k or giant.
func SizeByName(name string) (Size, error) {
	for _, s := range namedSizes {
		if s.Name == name {
			return s, nil
		}
	}
	return Size{}, fmt.Errorf("origin: unknown world size %q (known: %s)", name, strings.Join(SizeNames(), ", "))
}

// ID limits: a team index takes 3 base-36 digits and an object index 5 (see ids.go).
const (
	maxTeams   = 36 * 36 * 36
	maxObjects = 36 * 36 * 36 * 36 * 36
)

// ErrBadSize wraps every reason a Size is refused.
var ErrBadSize = errors.New("origin: bad world size")

// Validate checks that a world of this size can be generated and addressed by IDs.
func (s Size) Validate() error {
	switch {
	case s.Teams < 1 || s.Teams > maxTeams:
		return fmt.Errorf("%w: teams must be in [1, %d], got %d", ErrBadSize, maxTeams, s.Teams)
	case s.Users < 1 || s.Users > maxObjects:
		return fmt.Errorf("%w: users per team must be in [1, %d], got %d", ErrBadSize, maxObjects, s.Users)
	case s.Channels < 2 || s.Channels > maxObjects/2:
		// Half the channel ID space is left for channels created at run time.
		return fmt.Errorf("%w: channels per team must be in [2, %d], got %d", ErrBadSize, maxObjects/2, s.Channels)
	case math.IsNaN(s.ChannelsPerUser) || s.ChannelsPerUser < 1 || s.ChannelsPerUser > float64(s.Channels):
		return fmt.Errorf("%w: channels per user must be in [1, %d], got %v", ErrBadSize, s.Channels, s.ChannelsPerUser)
	}
	return nil
}

func (s Size) String() string {
	name := s.Name
	if name == "" {
		name = "custom"
	}
	return fmt.Sprintf("%s (%d teams × %d users × %d channels, ~%g channels per user)",
		name, s.Teams, s.Users, s.Channels, s.ChannelsPerUser)
}
