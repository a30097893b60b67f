import { useEffect, useMemo, useState, type FormEvent } from 'react';
import type { AreaDto, MessageDto, TicketDetailDto, TicketDto } from '../../server/domain/dto.js';
import { ConnectionBanner, ConnectionIndicator } from '../components/ConnectionIndicator.js';
import { useCatchUp, useConnection, useHelpdeskEvent } from '../hooks.js';
import { mergeById } from '../model.js';
import { formatTime } from '../router.js';
import { guestSession, newId } from '../session.js';
import { Composer } from '../staff/Composer.js';

/**
 * The customer page: a visitor picks their ward and writes, as a Tether guest; staff replies arrive
 * live (addressed to the guest's user id) and a catch-up fetch on every reconnection fills any gap.
 */
export function CustomerApp() {
  const session = useMemo(guestSession, []);
  const view = useConnection(session.realtime);
  const [ticket, setTicket] = useState<TicketDto | null>(null);
  const [messages, setMessages] = useState<MessageDto[]>([]);
  const [loading, setLoading] = useState(true);

  // Replies sent while away appear on every new realtime session (each reconnect).
  useCatchUp(
    session.realtime,
    async () => {
      const mine = await session.api.get<TicketDetailDto[]>('/api/guest/tickets');
      const latest = mine[0];
      if (latest !== undefined) {
        setTicket(latest.ticket);
        setMessages((prev) => mergeById(prev, latest.messages));
      }
    },
    false,
  );

  useHelpdeskEvent(
    'message_received',
    (d) => {
      setTicket((t) => (t === null || t.id === d.ticket.id ? d.ticket : t));
      setMessages((prev) =>
        prev.length === 0 || prev[0]!.ticketId === d.message.ticketId ? mergeById(prev, [d.message]) : prev,
      );
    },
    session.realtime,
  );
  useHelpdeskEvent(
    'ticket_resolved',
    (d) => setTicket((t) => (t?.id === d.ticket.id ? d.ticket : t)),
    session.realtime,
  );
  useHelpdeskEvent(
    'ticket_reopened',
    (d) => setTicket((t) => (t?.id === d.ticket.id ? d.ticket : t)),
    session.realtime,
  );

  useEffect(() => {
    void session.tokens.hasSession().then((has) => {
      if (has) session.realtime.connect();
      setLoading(false);
    });
  }, [session]);

  const start = async (ward: string, name: string, body: string, id: string) => {
    if (!(await session.tokens.hasSession())) await session.tokens.loginAsGuest();
    const detail = await session.api.post<TicketDetailDto>('/api/guest/tickets', { ward, name, body, id });
    setTicket(detail.ticket);
    setMessages((prev) => mergeById(prev, detail.messages));
    session.realtime.connect();
  };

  return (
    <div className="app customer" data-testid="customer">
      <header className="topbar">
        <strong className="brand">Farmers' helpdesk</strong>
        <nav />
        <ConnectionIndicator view={view} />
      </header>
      <ConnectionBanner view={view} />
      {loading ? (
        <p className="loading">Loading…</p>
      ) : ticket === null ? (
        <StartForm onStart={start} />
      ) : (
        <main className="chat" data-testid="guest-chat" data-ticket-id={ticket.id}>
          <h2>
            Your request · {ticket.wardName} ward{' '}
            <span className={`status status-${ticket.status}`} data-testid="ticket-status">
              {ticket.status === 'resolved' ? 'resolved' : 'open'}
            </span>
          </h2>
          <ol className="messages">
            {messages.map((m) => (
              <li
                key={m.id}
                className={`message message-${m.authorKind === 'customer' ? 'staff mine' : 'customer'}`}
                data-testid="message"
                data-message-id={m.id}
              >
                <span className="author">{m.authorKind === 'customer' ? 'You' : `${m.authorName} · helpdesk`}</span>
                <span className="body">{m.body}</span>
                <span className="time">{formatTime(m.createdAt)}</span>
              </li>
            ))}
          </ol>
          <Composer
            testId="guest-composer"
            placeholder="Write to the helpdesk…"
            onSend={async (id, body) => {
              const message = await session.api.post<MessageDto>(
                `/api/guest/tickets/${encodeURIComponent(ticket.id)}/messages`,
                { id, body },
              );
              setMessages((prev) => mergeById(prev, [message]));
            }}
          />
        </main>
      )}
    </div>
  );
}

function StartForm({ onStart }: { onStart: (ward: string, name: string, body: string, id: string) => Promise<void> }) {
  const [areas, setAreas] = useState<AreaDto[] | null>(null);
  const [ward, setWard] = useState('');
  const [name, setName] = useState('');
  const [body, setBody] = useState('');
  const [id] = useState(newId);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    fetch('/api/areas')
      .then((r) => r.json() as Promise<AreaDto[]>)
      .then(setAreas)
      .catch(() => setError('Could not load the list of wards. Check your connection and reload.'));
  }, []);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await onStart(ward, name, body, id);
    } catch {
      setError('Your message was not sent — you seem to be offline. Press Send again.');
    } finally {
      setBusy(false);
    }
  };

  const byPath = new Map((areas ?? []).map((a) => [a.path, a]));
  const wards = (areas ?? []).filter((a) => a.level === 'ward');
  return (
    <main className="start">
      <h1>Ask the farmers' helpdesk</h1>
      <p className="muted">Extension officers for your ward will answer here.</p>
      <form onSubmit={(e) => void submit(e)} data-testid="start-form">
        <label>
          Your ward
          <select name="ward" value={ward} onChange={(e) => setWard(e.target.value)} required>
            <option value="">Choose…</option>
            {wards.map((w) => {
              const district = byPath.get(w.parent ?? '');
              const region = byPath.get(district?.parent ?? '');
              return (
                <option key={w.path} value={w.path}>
                  {w.name} — {district?.name}, {region?.name}
                </option>
              );
            })}
          </select>
        </label>
        <label>
          Your name
          <input name="name" value={name} onChange={(e) => setName(e.target.value)} required maxLength={80} />
        </label>
        <label>
          Your question
          <textarea name="body" value={body} onChange={(e) => setBody(e.target.value)} required rows={4} />
        </label>
        {error !== null && <p className="error">{error}</p>}
        <button type="submit" disabled={busy || areas === null}>
          {busy ? 'Sending…' : 'Send'}
        </button>
      </form>
    </main>
  );
}
