import { useEffect, useState } from 'react';
import type { DirectMessageDto, MeDto, MessageDto, TicketDto } from '../../server/domain/dto.js';
import { ConnectionBanner, ConnectionIndicator } from '../components/ConnectionIndicator.js';
import { SignIn } from '../components/SignIn.js';
import { useConnection } from '../hooks.js';
import { describeStaff } from '../labels.js';
import { usePath } from '../router.js';
import type { Session } from '../session.js';
import { DirectMessages } from './DirectMessages.js';
import { Inbox } from './Inbox.js';
import { TicketView } from './TicketView.js';
import { useStaffAuth } from './use-staff-auth.js';
import { useStaffData } from './use-staff-data.js';

/** Staff pages: sign-in, then inbox + ticket, or direct messages. */
export function StaffApp() {
  const { session, phase, signIn, signOut } = useStaffAuth();
  if (phase.kind === 'loading')
    return (
      <p className="loading" data-testid="loading">
        Loading…
      </p>
    );
  if (phase.kind === 'signed_out')
    return <SignIn title="Farmers' helpdesk — staff" notice={phase.notice} onSignIn={signIn} />;
  return <Workspace key={phase.me.id} session={session} me={phase.me} onSignOut={signOut} />;
}

/** The page chrome shared by the staff workspace and the dashboard. */
export function Header({
  session,
  me,
  onSignOut,
  children,
}: {
  session: Session;
  me: MeDto;
  onSignOut: () => Promise<void>;
  children?: React.ReactNode;
}) {
  const view = useConnection(session.realtime);
  return (
    <>
      <header className="topbar">
        <strong className="brand">Farmers' helpdesk</strong>
        <nav>{children}</nav>
        <ConnectionIndicator view={view} />
        <span className="me" data-testid="me">
          {me.name} <span className="muted small">{describeStaff(me)}</span>
        </span>
        <button className="link" onClick={() => void onSignOut()} data-testid="sign-out">
          Sign out
        </button>
      </header>
      <ConnectionBanner view={view} />
    </>
  );
}

function Workspace({ session, me, onSignOut }: { session: Session; me: MeDto; onSignOut: () => Promise<void> }) {
  const [path, navigate] = usePath();
  const { state, dispatch, refreshTicket, refreshPeer, markTicketRead, markDmRead } = useStaffData(session, me.id);
  const [tab, setTab] = useState<'open' | 'resolved'>('open');
  const ticketId = /^\/tickets\/([^/]+)$/.exec(path)?.[1] ?? null;
  const peerId = /^\/messages\/([^/]+)$/.exec(path)?.[1] ?? null;
  const onMessages = path.startsWith('/messages');
  const { api } = session;

  useEffect(() => {
    dispatch({ type: 'open_ticket', id: ticketId });
    if (ticketId === null) return;
    refreshTicket(ticketId).catch(() => undefined);
    void markTicketRead({ ticketId });
  }, [ticketId, dispatch, refreshTicket, markTicketRead]);

  useEffect(() => {
    dispatch({ type: 'open_peer', id: peerId });
    if (peerId === null) return;
    refreshPeer(peerId).catch(() => undefined);
    void markDmRead({ peerId });
  }, [peerId, dispatch, refreshPeer, markDmRead]);

  const ticket = ticketId === null ? undefined : state.tickets[ticketId];
  const dmUnread = Object.values(state.dmUnread).reduce((a, b) => a + b, 0);
  const inboxUnread = Object.values(state.tickets).reduce((a, t) => a + (t.status === 'open' ? t.unread : 0), 0);

  return (
    <div className="app">
      <Header session={session} me={me} onSignOut={onSignOut}>
        <button className={onMessages ? 'nav' : 'nav active'} onClick={() => navigate('/')} data-testid="nav-inbox">
          Inbox {inboxUnread > 0 && <span className="badge">{inboxUnread}</span>}
        </button>
        <button
          className={onMessages ? 'nav active' : 'nav'}
          onClick={() => navigate('/messages')}
          data-testid="nav-messages"
        >
          Messages {dmUnread > 0 && <span className="badge">{dmUnread}</span>}
        </button>
        {me.isAdmin && (
          <a className="nav" href="/admin">
            Dashboard
          </a>
        )}
      </Header>
      {onMessages ? (
        <DirectMessages
          me={me.id}
          staff={state.staff}
          unread={state.dmUnread}
          peerId={peerId}
          messages={peerId === null ? undefined : state.dms[peerId]}
          onOpen={(id) => navigate(id === null ? '/messages' : `/messages/${id}`)}
          onSend={async (id, body) => {
            const message = await api.post<DirectMessageDto>(`/api/dm/${encodeURIComponent(peerId!)}`, { id, body });
            dispatch({ type: 'dm', message, me: me.id });
          }}
        />
      ) : (
        // Phones show the list or the open request, never both (styles.css, max-width 800px).
        <div className={ticketId === null ? 'workspace' : 'workspace has-open'}>
          <Inbox
            tickets={Object.values(state.tickets)}
            tab={tab}
            onTab={setTab}
            openId={ticketId}
            onOpen={(id) => navigate(`/tickets/${id}`)}
          />
          {ticket === undefined ? (
            <p className="empty" data-testid="no-ticket">
              {ticketId === null ? 'Choose a request from the inbox.' : 'Loading…'}
            </p>
          ) : (
            <TicketView
              onBack={() => navigate('/')}
              ticket={ticket}
              messages={state.messages[ticket.id]}
              whispers={state.whispers[ticket.id]}
              onReply={async (id, body) => {
                const message = await api.post<MessageDto>(`/api/tickets/${encodeURIComponent(ticket.id)}/messages`, {
                  id,
                  body,
                });
                dispatch({ type: 'message', ticket, message, me: me.id });
              }}
              onStatus={async (status) => {
                const next = await api.post<TicketDto>(
                  `/api/tickets/${encodeURIComponent(ticket.id)}/${status === 'resolved' ? 'resolve' : 'reopen'}`,
                );
                dispatch({ type: 'ticket', ticket: next });
              }}
            />
          )}
        </div>
      )}
    </div>
  );
}
