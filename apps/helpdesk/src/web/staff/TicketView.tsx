import { useLayoutEffect, useRef, useState } from 'react';
import type { MessageDto, TicketDto, WhisperDto } from '../../server/domain/dto.js';
import { formatTime } from '../router.js';
import { Composer } from './Composer.js';

export interface TicketViewProps {
  ticket: TicketDto;
  messages: MessageDto[] | undefined;
  whispers: WhisperDto[] | undefined;
  onReply: (id: string, body: string) => Promise<void>;
  onStatus: (status: 'open' | 'resolved') => Promise<void>;
  /** Back to the inbox (shown on phones, where the inbox is hidden while a request is open). */
  onBack?: () => void;
}

/** One request: history, reply, the whisper panel (automatic suggestions) and resolve/reopen. */
export function TicketView({ ticket, messages, whispers, onReply, onStatus, onBack }: TicketViewProps) {
  const [draft, setDraft] = useState('');
  const [statusError, setStatusError] = useState<string | null>(null);
  const follow = useFollow(ticket.id, messages?.length ?? 0);
  // One card per suggestion: the same rule firing on every customer message is shown once (latest).
  const suggestions = uniqueSuggestions(whispers ?? []);
  const toggle = async () => {
    setStatusError(null);
    try {
      await onStatus(ticket.status === 'open' ? 'resolved' : 'open');
    } catch {
      setStatusError('Could not change the status (offline?). Try again.');
    }
  };
  return (
    <section className="ticket" data-testid="ticket-view" data-ticket-id={ticket.id} data-status={ticket.status}>
      <header className="ticket-header">
        <div>
          <h2>
            {onBack !== undefined && (
              <button className="back link" onClick={onBack} data-testid="back" aria-label="Back to the inbox">
                ←
              </button>
            )}{' '}
            {ticket.customerName}
          </h2>
          <p className="muted">
            {ticket.wardName} ward · opened {formatTime(ticket.createdAt)} ·{' '}
            <span className={`status status-${ticket.status}`} data-testid="ticket-status">
              {ticket.status}
            </span>
          </p>
        </div>
        <button onClick={() => void toggle()} data-testid={ticket.status === 'open' ? 'resolve' : 'reopen'}>
          {ticket.status === 'open' ? 'Resolve' : 'Reopen'}
        </button>
      </header>
      {statusError !== null && <p className="error">{statusError}</p>}
      <div className="ticket-body">
        <div className="thread">
          <ol className="messages" data-testid="messages" ref={follow.ref} onScroll={follow.onScroll}>
            {messages === undefined && <li className="muted">Loading…</li>}
            {messages?.map((m) => (
              <li key={m.id} className={`message message-${m.authorKind}`} data-testid="message" data-message-id={m.id}>
                <span className="author">{m.authorName}</span>
                <span className="body">{m.body}</span>
                <span className="time">{formatTime(m.createdAt)}</span>
              </li>
            ))}
          </ol>
          {follow.unseen > 0 && (
            <button className="new-messages" onClick={follow.toBottom} data-testid="new-messages">
              {follow.unseen} new message{follow.unseen === 1 ? '' : 's'} ↓
            </button>
          )}
        </div>
        <aside className="whispers" data-testid="whispers" aria-label="Suggested replies">
          <h3>Suggested replies</h3>
          <p className="muted small">
            Automatic, rule-based suggestions — not written by a person. Check before sending.
          </p>
          {suggestions.length === 0 && <p className="muted">No suggestions yet.</p>}
          {suggestions.map((w) => (
            <div key={w.id} className="whisper" data-testid="whisper">
              <span className="rule">rule: {w.rule}</span>
              <p>{w.body}</p>
              <button onClick={() => setDraft(w.body)}>Use</button>
            </div>
          ))}
        </aside>
      </div>
      <Composer onSend={onReply} placeholder="Reply to the customer…" draft={draft} onDraft={setDraft} testId="reply" />
    </section>
  );
}

/** Newest first, each rule's suggestion once. */
function uniqueSuggestions(whispers: readonly WhisperDto[]): WhisperDto[] {
  const seen = new Set<string>();
  const out: WhisperDto[] = [];
  for (const w of [...whispers].reverse()) {
    const key = `${w.rule}\n${w.body}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(w);
  }
  return out;
}

/**
 * Keeps a message list scrolled to its newest message while the reader is at the bottom; when they
 * have scrolled up to read, new messages are counted instead (a "new messages" marker that scrolls
 * down). Opening another ticket starts at its bottom.
 */
function useFollow(
  key: string,
  count: number,
): { ref: React.RefObject<HTMLOListElement | null>; onScroll: () => void; unseen: number; toBottom: () => void } {
  const ref = useRef<HTMLOListElement | null>(null);
  const atBottom = useRef(true);
  const seen = useRef({ key, count });
  const [unseen, setUnseen] = useState(0);
  const toBottom = () => {
    const el = ref.current;
    if (el !== null) el.scrollTop = el.scrollHeight;
    atBottom.current = true;
    setUnseen(0);
  };
  useLayoutEffect(() => {
    const before = seen.current;
    seen.current = { key, count };
    const el = ref.current;
    if (el === null) return;
    if (before.key !== key) {
      el.scrollTop = el.scrollHeight;
      atBottom.current = true;
      setUnseen(0);
      return;
    }
    const added = count - before.count;
    if (added <= 0) return;
    if (atBottom.current) el.scrollTop = el.scrollHeight;
    else setUnseen((n) => n + added);
  }, [key, count]);
  const onScroll = () => {
    const el = ref.current;
    if (el === null) return;
    atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    if (atBottom.current) setUnseen(0);
  };
  return { ref, onScroll, unseen, toBottom };
}
