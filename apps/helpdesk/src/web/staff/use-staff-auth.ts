import { useCallback, useEffect, useState } from 'react';
import type { MeDto } from '../../server/domain/dto.js';
import { signedOutReason, staffSession, type Session, type SignOutNotice } from '../session.js';

export type AuthPhase =
  { kind: 'loading' } | { kind: 'signed_out'; notice: SignOutNotice | null } | { kind: 'ready'; me: MeDto };

/**
 * The staff page's session lifecycle: restore a stored session, sign in, sign out, and fall to the
 * signed-out screen at once when the SDK reports a terminal sign-out (revoked, refresh refused).
 * A new SDK session object is made after every sign-out (logout clears the old one's listeners).
 */
export function useStaffAuth(): {
  session: Session;
  phase: AuthPhase;
  signIn: (email: string, password: string) => Promise<void>;
  signOut: () => Promise<void>;
} {
  const [session, setSession] = useState<Session>(staffSession);
  const [phase, setPhase] = useState<AuthPhase>({ kind: 'loading' });

  const start = useCallback(async (s: Session) => {
    try {
      const me = await s.api.get<MeDto>('/api/me');
      s.realtime.connect();
      setPhase({ kind: 'ready', me });
    } catch {
      setPhase({ kind: 'signed_out', notice: null });
    }
  }, []);

  useEffect(() => {
    let live = true;
    const off = session.realtime.onSignedOut((event) => {
      if (!live) return;
      setPhase({ kind: 'signed_out', notice: signedOutReason(event) });
      // Outside the SDK's own event dispatch: retire this session, start clean for the next sign-in.
      setTimeout(() => {
        session.realtime.dispose();
        setSession(staffSession());
      }, 0);
    });
    void session.tokens.hasSession().then((has) => {
      if (!live) return;
      if (has) void start(session);
      else setPhase((p) => (p.kind === 'loading' ? { kind: 'signed_out', notice: null } : p));
    });
    return () => {
      live = false;
      off();
    };
  }, [session, start]);

  const signIn = async (email: string, password: string) => {
    await session.tokens.login(email, password);
    await start(session);
  };

  // The SDK reports the logout as a sign-out (code null); the listener above does the rest.
  const signOut = () => session.realtime.logout();

  return { session, phase, signIn, signOut };
}
