// Shapes of the protocol objects the app uses (docs/protocol.md). Fields may be added by the
// server; the app reads only these.
import type { User } from './api';
export type { User };

export type Role = 'owner' | 'admin' | 'member';
export type InvitePolicy = 'owner' | 'admins' | 'members';
export type PresenceState = 'online' | 'away' | 'offline';

export interface Msg {
  seq: number;
  chat: string;
  author: User;
  body: string;
  clientMsgId: string | null;
  createdAt: number;
}

export interface Chat {
  slug: string;
  title: string;
  isPublic: boolean;
  maxParticipants: number | null;
  invitePolicy: InvitePolicy;
  archived: boolean;
  createdAt: number;
  lastActivity: number;
  lastSeq: number;
  participantCount: number;
  role: Role | null;
  activeUsers: User[];
  // chat.list only
  unread?: number;
  lastMessage?: Msg | null;
  // chat.get only
  participants?: Participant[];
}

export interface Participant extends User {
  role: Role;
  joinedAt: number;
}

export interface Presence {
  user: { id: number; username: string };
  state: PresenceState;
  lastSeen: number | null;
}

export type InvitationStatus = 'pending' | 'accepted' | 'declined' | 'revoked' | 'expired';

export interface Invitation {
  id: number;
  chat: string;
  chatTitle: string;
  from: User;
  to: User;
  status: InvitationStatus;
  createdAt: number;
  expiresAt: number;
}

export interface SearchUser extends User {
  participant?: boolean;
  invited?: boolean;
}

// A message as the room shows it: confirmed ones carry a seq; our own unconfirmed sends are
// `pending` (waiting for the server) or `failed` (rejected or given up, with a retry button).
export interface UiMsg {
  key: string; // clientMsgId for our own sends, else "s<seq>"
  seq: number | null;
  author: User;
  body: string;
  createdAt: number;
  clientMsgId: string | null;
  status: 'sent' | 'pending' | 'failed';
  error?: string;
}
