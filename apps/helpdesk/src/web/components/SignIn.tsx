import { useState, type FormEvent } from 'react';
import { TetherError } from '@tether/client';
import type { SignOutNotice } from '../session.js';

/** Email + password sign-in (POST /auth/login through the SDK's token manager). */
export function SignIn({
  onSignIn,
  notice,
  title,
}: {
  onSignIn: (email: string, password: string) => Promise<void>;
  notice: SignOutNotice | null;
  title: string;
}) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await onSignIn(email, password);
    } catch (err) {
      if (err instanceof TetherError && err.code === 'INVALID_CREDENTIALS') setError('Wrong email or password.');
      else if (err instanceof TetherError && err.code === 'RATE_LIMITED')
        setError('Too many attempts; wait a minute and try again.');
      else setError('Could not reach the server. Check your connection and try again.');
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="signin" data-testid="signin">
      <h1>{title}</h1>
      {notice !== null && (
        <p
          className={`banner ${notice.forced ? 'banner-warn' : 'banner-info'}`}
          role={notice.forced ? 'alert' : 'status'}
          data-testid="signed-out"
          data-forced={String(notice.forced)}
        >
          {notice.text}
        </p>
      )}
      <form onSubmit={(e) => void submit(e)}>
        <label>
          Email
          <input
            name="email"
            type="email"
            autoComplete="username"
            value={email}
            onChange={(e) => setEmail(e.target.value)}
            required
          />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autoComplete="current-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            required
          />
        </label>
        {error !== null && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      <p className="hint">
        Demo: <code>admin@helpdesk.demo</code> / <code>admin-demo</code>, or an extension officer such as{' '}
        <code>eo.kiharu@helpdesk.demo</code> / <code>eo-demo</code>. Customers write in at{' '}
        <a href="/customer">/customer</a>.
      </p>
    </main>
  );
}
