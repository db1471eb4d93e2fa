// Parley TypeScript SDK: see ../README.md.
export {
  ParleyClient,
  randomClientMsgId,
  type ConnectionState,
  type OutgoingMessage,
  type OutgoingStatus,
  type ParleyClientEvents,
  type ParleyClientOptions,
  type RequestOptions,
  type Timers,
  type TokenSource,
  type WebSocketConstructor,
  type WebSocketLike,
} from './client.js';
export { PendingStore, type PendingStoreOptions, type StorageLike, type StoredSend } from './pending-store.js';
export { ParleyError, NON_RETRYABLE_SEND_ERRORS, type ClientErrorCode, type ParleyErrorCode } from './errors.js';
export { Emitter } from './emitter.js';
export {
  backoffCap,
  backoffDelay,
  DEFAULT_BACKOFF_BASE_MS,
  DEFAULT_BACKOFF_MAX_MS,
  type BackoffOptions,
} from './backoff.js';
export { TypingController, type TypingHost, type TypingOptions } from './typing.js';
export { ActivityCounter, COUNT_CAP, type SubCounts } from './activity.js';
export {
  attachVisibility,
  DEFAULT_INPUT_EVENTS,
  type DocumentLike,
  type VisibilityOptions,
  type WindowLike,
} from './visibility.js';
export { canInvite, invitePolicyAllows } from './rules.js';
export { snippetParts, SNIPPET_MATCH_CLOSE, SNIPPET_MATCH_OPEN, type SnippetPart } from './search.js';
export { nextBrowseArgs } from './browse.js';
export {
  AVATAR_MAX_BYTES,
  AVATAR_TYPES,
  changePassword,
  deleteAvatar,
  login,
  logout,
  me,
  signup,
  uploadAvatar,
  wsUrlFor,
  type HttpOptions,
  type SessionResult,
} from './http.js';
export * from './types.js';
export {
  applyBatch,
  applyEntries,
  applyEntry,
  emptyTimeline,
  isItemKind,
  kindOf,
  textMessages,
  applyDelta,
  applyStreams,
  utf8Length,
  type DeltaResult,
  type Timeline,
  type TimelineItem,
} from './timeline.js';
export { StreamWriter, MAX_DELTA_BYTES, type StreamWriterOptions } from './stream-writer.js';
export {
  createBot,
  deleteBot,
  listBots,
  rotateBotToken,
  rotateBotWebhookSecret,
  updateBot,
  type Bot,
  type CreatedBot,
} from './bots.js';
