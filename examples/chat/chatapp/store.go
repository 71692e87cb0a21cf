package chatapp

import (
	"slices"
	"sync"
)

// store keeps who is who and who is where: user ID ↔ connection ID, and room
// membership. It is safe for concurrent use; every method is one atomic step.
type store struct {
	mu    sync.Mutex
	users map[string]string              // user ID → connection ID
	conns map[string]*member             // connection ID → member
	rooms map[string]map[string]struct{} // room → connection IDs
}

type member struct {
	userID string
	rooms  map[string]struct{}
}

func newStore() *store {
	return &store{
		users: map[string]string{},
		conns: map[string]*member{},
		rooms: map[string]map[string]struct{}{},
	}
}

// register gives connID the user ID userID. It returns the connection that
// holds userID when that is another one (and changes nothing), and whether
// connID was already registered under another ID.
func (s *store) register(connID, userID string) (holder string, renamed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h, ok := s.users[userID]; ok && h != connID {
		return h, false
	}
	m := s.conns[connID]
	if m == nil {
		m = &member{rooms: map[string]struct{}{}}
		s.conns[connID] = m
	} else if m.userID != userID {
		delete(s.users, m.userID)
		renamed = true
	}
	m.userID = userID
	s.users[userID] = connID
	return "", renamed
}

// userOf returns the user ID that connID registered, or "".
func (s *store) userOf(connID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.conns[connID]; m != nil {
		return m.userID
	}
	return ""
}

// connOf returns the connection of userID, or "".
func (s *store) connOf(userID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users[userID]
}

// join adds connID to room. It returns the room's members (user IDs, sorted)
// and the other members' connections, and whether connID was already in it.
func (s *store) join(connID, room string) (members []string, others []string, already bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.conns[connID]
	if m == nil {
		return nil, nil, false
	}
	_, already = m.rooms[room]
	m.rooms[room] = struct{}{}
	if s.rooms[room] == nil {
		s.rooms[room] = map[string]struct{}{}
	}
	s.rooms[room][connID] = struct{}{}
	members, others = s.roomLocked(room, connID)
	return members, others, already
}

// leave removes connID from room and returns the remaining members'
// connections; ok is false when connID was not in room.
func (s *store) leave(connID, room string) (others []string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.conns[connID]
	if m == nil {
		return nil, false
	}
	if _, ok := m.rooms[room]; !ok {
		return nil, false
	}
	s.leaveLocked(connID, m, room)
	_, others = s.roomLocked(room, "")
	return others, true
}

func (s *store) leaveLocked(connID string, m *member, room string) {
	delete(m.rooms, room)
	delete(s.rooms[room], connID)
	if len(s.rooms[room]) == 0 {
		delete(s.rooms, room)
	}
}

// roomConns returns the connections in room; ok is false when connID is not
// one of them.
func (s *store) roomConns(connID, room string) (conns []string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.rooms[room][connID]; !ok {
		return nil, false
	}
	_, all := s.roomLocked(room, "")
	return all, true
}

// roomLocked returns the user IDs (sorted) and the connections of room's
// members, leaving out the connection except.
func (s *store) roomLocked(room, except string) (users, conns []string) {
	for c := range s.rooms[room] {
		users = append(users, s.conns[c].userID)
		if c != except {
			conns = append(conns, c)
		}
	}
	slices.Sort(users)
	slices.Sort(conns)
	return users, conns
}

// departed is what remove took away.
type departed struct {
	userID string
	rooms  map[string][]string // room → remaining members' connections
}

// remove forgets connID: its user ID and its rooms.
func (s *store) remove(connID string) (departed, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.conns[connID]
	if m == nil {
		return departed{}, false
	}
	d := departed{userID: m.userID, rooms: map[string][]string{}}
	for room := range m.rooms {
		s.leaveLocked(connID, m, room)
		_, d.rooms[room] = s.roomLocked(room, "")
	}
	delete(s.conns, connID)
	if s.users[m.userID] == connID {
		delete(s.users, m.userID)
	}
	return d, true
}

// presence returns the registered user IDs, sorted, and their connections.
func (s *store) presence() (users, conns []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for u, c := range s.users {
		users = append(users, u)
		conns = append(conns, c)
	}
	slices.Sort(users)
	slices.Sort(conns)
	return users, conns
}
