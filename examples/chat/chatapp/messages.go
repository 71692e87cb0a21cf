package chatapp

import (
	"encoding/json"
	"regexp"
	"unicode/utf8"
)

// The chat's wire format. Every frame is a JSON object. Clients send
// {"action": …} (the default route selection expression routes on it); the
// server answers with {"type": …}. registerUser and sendPrivateMessage, and the
// registrationSuccess and privateMessage frames, are those of API Gateway's
// chat sample, field for field. README.md lists every message.

// Message types the server sends.
const (
	TypeRegistrationSuccess = "registrationSuccess"
	TypePrivateMessage      = "privateMessage"
	TypeJoinSuccess         = "joinSuccess"
	TypeLeaveSuccess        = "leaveSuccess"
	TypeUserJoined          = "userJoined"
	TypeUserLeft            = "userLeft"
	TypeRoomMessage         = "roomMessage"
	TypePresence            = "presence"
	TypeError               = "error"
)

// Error codes, in the code field of an error frame.
const (
	CodeInvalidRequest = "invalidRequest" // not a JSON object, or a field is missing or invalid
	CodeNotRegistered  = "notRegistered"  // the action needs registerUser first
	CodeUserIDTaken    = "userIdTaken"    // another open connection registered that user ID
	CodeUnknownUser    = "unknownUser"    // sendPrivateMessage to a user who is not online
	CodeNotInRoom      = "notInRoom"      // sendMessage or leave for a room not joined
	CodeUnknownAction  = "unknownAction"  // no route for the action ($default)
	CodeDeliveryFailed = "deliveryFailed" // the target is not reading fast enough (its send queue is full)
)

// Limits on what clients send.
const (
	MaxMessageLength = 2000 // characters in a private or room message
	maxNameLength    = 32   // characters in a user ID or room name
)

// Routes, as the action field of client frames.
const (
	ActionRegisterUser       = "registerUser"
	ActionSendPrivateMessage = "sendPrivateMessage"
	ActionJoin               = "join"
	ActionLeave              = "leave"
	ActionSendMessage        = "sendMessage"
)

// Client → server.

type registerUserRequest struct {
	UserID string `json:"userId"`
}

type sendPrivateMessageRequest struct {
	TargetUserID string `json:"targetUserId"`
	Message      string `json:"message"`
}

type roomRequest struct {
	Room    string `json:"room"`
	Message string `json:"message"`
}

// Server → client.

// RegistrationSuccess answers registerUser.
type RegistrationSuccess struct {
	Type   string `json:"type"` // "registrationSuccess"
	UserID string `json:"userId"`
}

// PrivateMessage reaches the target of sendPrivateMessage.
type PrivateMessage struct {
	Type       string `json:"type"` // "privateMessage"
	FromUserID string `json:"fromUserId"`
	Message    string `json:"message"`
}

// JoinSuccess answers join with the room's members, the caller included.
type JoinSuccess struct {
	Type    string   `json:"type"` // "joinSuccess"
	Room    string   `json:"room"`
	Members []string `json:"members"`
}

// LeaveSuccess answers leave.
type LeaveSuccess struct {
	Type string `json:"type"` // "leaveSuccess"
	Room string `json:"room"`
}

// RoomEvent tells a room's other members that a user joined (userJoined) or
// left (userLeft) it.
type RoomEvent struct {
	Type   string `json:"type"` // "userJoined" or "userLeft"
	Room   string `json:"room"`
	UserID string `json:"userId"`
}

// RoomMessage reaches every member of the room, the sender included.
type RoomMessage struct {
	Type       string `json:"type"` // "roomMessage"
	Room       string `json:"room"`
	FromUserID string `json:"fromUserId"`
	Message    string `json:"message"`
}

// Presence lists the registered users, sorted, and is sent to every
// registered connection whenever the list changes.
type Presence struct {
	Type  string   `json:"type"` // "presence"
	Users []string `json:"users"`
}

// Error reports a request that failed. Action names the request's action when
// it had one; TargetUserID or Room name what it was about.
type Error struct {
	Type         string `json:"type"` // "error"
	Code         string `json:"code"`
	Message      string `json:"message"`
	Action       string `json:"action,omitempty"`
	TargetUserID string `json:"targetUserId,omitempty"`
	Room         string `json:"room,omitempty"`
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// validName reports whether s can be a user ID or a room name: 1 to 32
// letters, digits, '_', '.' or '-'.
func validName(s string) bool {
	return len(s) <= maxNameLength && nameRE.MatchString(s)
}

func validMessage(s string) bool {
	return s != "" && utf8.ValidString(s) && utf8.RuneCountInString(s) <= MaxMessageLength
}

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own types are encoded
	}
	return b
}
