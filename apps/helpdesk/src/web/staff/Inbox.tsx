import type { TicketDto } from '../../server/domain/dto.js';
import { formatTime } from '../router.js';

/** Open/resolved tabs, newest activity first, with unread counts. */
export function Inbox({
  tickets,
  tab,
  onTab,
  openId,
  onOpen,
}: {
  tickets: TicketDto[];
  tab: 'open' | 'resolved';
  onTab: (t: 'open' | 'resolved') => void;
  openId: string | null;
  onOpen: (id: string) => void;
}) {
  const count = (s: 'open' | 'resolved') => tickets.filter((t) => t.status === s).length;
  const shown = tickets.filter((t) => t.status === tab).sort((a, b) => b.lastMessageAt - a.lastMessageAt);
  return (
    <section className="inbox" data-testid="inbox">
      <div className="tabs" role="tablist">
        {(['open', 'resolved'] as const).map((s) => (
          <button
            key={s}
            role="tab"
            aria-selected={tab === s}
            className={tab === s ? 'tab active' : 'tab'}
            onClick={() => onTab(s)}
            data-testid={`tab-${s}`}
          >
            {s === 'open' ? 'Open' : 'Resolved'} <span className="count">{count(s)}</span>
          </button>
        ))}
      </div>
      {shown.length === 0 && <p className="empty">No {tab} requests in your area.</p>}
      <ul className="ticket-list">
        {shown.map((t) => (
          <li key={t.id}>
            <button
              className={t.id === openId ? 'ticket-item selected' : 'ticket-item'}
              data-testid="ticket-item"
              data-ticket-id={t.id}
              data-status={t.status}
              onClick={() => onOpen(t.id)}
            >
              <span className="ticket-top">
                <strong>{t.customerName}</strong>
                <span className="ward">{t.wardName}</span>
                {t.unread > 0 && (
                  <span className="badge" data-testid="unread" aria-label={`${t.unread} unread`}>
                    {t.unread}
                  </span>
                )}
              </span>
              <span className="subject">{t.subject}</span>
              <span className="time">{formatTime(t.lastMessageAt)}</span>
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}
