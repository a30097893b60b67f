import { useState } from 'react';
import type { MessageDto, TicketDto, WhisperDto } from '../../server/domain/dto.js';
import { formatTime } from '../router.js';
import { Composer } from './Composer.js';

export interface TicketViewProps {
  ticket: TicketDto;
  messages: MessageDto[] | undefined;
  whispers: WhisperDto[] | undefined;
  onReply: (id: string, body: string) => Promise<void>;
  onStatus: (status: 'open' | 'resolved') => Promise<void>;
}

/** One request: history, reply, the whisper panel (automatic suggestions) and resolve/reopen. */
export function TicketView({ ticket, messages, whispers, onReply, onStatus }: TicketViewProps) {
  const [draft, setDraft] = useState('');
  const [statusError, setStatusError] = useState<string | null>(null);
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
          <h2>{ticket.customerName}</h2>
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
        <ol className="messages" data-testid="messages">
          {messages === undefined && <li className="muted">Loading…</li>}
          {messages?.map((m) => (
            <li key={m.id} className={`message message-${m.authorKind}`} data-testid="message" data-message-id={m.id}>
              <span className="author">{m.authorName}</span>
              <span className="body">{m.body}</span>
              <span className="time">{formatTime(m.createdAt)}</span>
            </li>
          ))}
        </ol>
        <aside className="whispers" data-testid="whispers" aria-label="Suggested replies">
          <h3>Suggested replies</h3>
          <p className="muted small">
            Automatic, rule-based suggestions — not written by a person. Check before sending.
          </p>
          {(whispers ?? []).length === 0 && <p className="muted">No suggestions yet.</p>}
          {[...(whispers ?? [])].reverse().map((w) => (
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
