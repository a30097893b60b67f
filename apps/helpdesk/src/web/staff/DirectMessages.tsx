import type { DirectMessageDto, StaffDto } from '../../server/domain/dto.js';
import { describeStaff } from '../labels.js';
import { formatTime } from '../router.js';
import { Composer } from './Composer.js';

export interface DirectMessagesProps {
  me: string;
  staff: StaffDto[];
  unread: Record<string, number>;
  peerId: string | null;
  messages: DirectMessageDto[] | undefined;
  /** Opens a conversation, or (null) goes back to the list (phones show one at a time). */
  onOpen: (id: string | null) => void;
  onSend: (id: string, body: string) => Promise<void>;
}

/** Staff-to-staff messages with read receipts. */
export function DirectMessages({ me, staff, unread, peerId, messages, onOpen, onSend }: DirectMessagesProps) {
  const peer = staff.find((s) => s.id === peerId);
  return (
    <section className={peerId === null ? 'dms' : 'dms has-open'} data-testid="dms">
      <ul className="people">
        {staff.map((s) => (
          <li key={s.id}>
            <button
              className={s.id === peerId ? 'person selected' : 'person'}
              onClick={() => onOpen(s.id)}
              data-testid="person"
              data-user-id={s.id}
            >
              <strong>{s.name}</strong>
              <span className="muted small">{describeStaff(s)}</span>
              {(unread[s.id] ?? 0) > 0 && <span className="badge">{unread[s.id]}</span>}
            </button>
          </li>
        ))}
      </ul>
      <div className="conversation">
        {peer === undefined ? (
          <p className="empty">Choose a colleague to message.</p>
        ) : (
          <>
            <h2>
              <button
                className="back link"
                onClick={() => onOpen(null)}
                data-testid="back"
                aria-label="Back to colleagues"
              >
                ←
              </button>{' '}
              {peer.name}
            </h2>
            <ol className="messages">
              {(messages ?? []).map((m) => (
                <li
                  key={m.id}
                  className={m.fromId === me ? 'message message-staff mine' : 'message message-customer'}
                  data-testid="dm"
                  data-message-id={m.id}
                >
                  <span className="body">{m.body}</span>
                  <span className="time">
                    {formatTime(m.createdAt)}
                    {m.fromId === me && (
                      <span className="receipt" data-testid="receipt" data-read={m.readAt !== null}>
                        {m.readAt === null ? ' ✓ sent' : ' ✓✓ read'}
                      </span>
                    )}
                  </span>
                </li>
              ))}
            </ol>
            <Composer onSend={onSend} placeholder={`Message ${peer.name}…`} testId="dm-composer" />
          </>
        )}
      </div>
    </section>
  );
}
