import { useRef, useState, type FormEvent } from 'react';
import { newId } from '../session.js';

/**
 * A message box that never loses a message: the id is chosen before sending and kept until the
 * server confirms, so "Retry" after a network failure cannot create a duplicate. The box empties
 * as soon as a message is sent (what the user types meanwhile is theirs, never overwritten), and a
 * send that fails puts the text back for "Send again" unless something new was typed.
 */
export function Composer({
  onSend,
  placeholder,
  draft,
  onDraft,
  testId,
}: {
  onSend: (id: string, body: string) => Promise<void>;
  placeholder: string;
  draft?: string;
  onDraft?: (s: string) => void;
  testId: string;
}) {
  const [own, setOwn] = useState('');
  const text = draft ?? own;
  const setText = onDraft ?? setOwn;
  const current = useRef(text);
  current.current = text;
  const [pendingId, setPendingId] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const body = text.trim();
    if (body.length === 0 || busy) return;
    const id = pendingId ?? newId();
    setPendingId(id);
    setBusy(true);
    setError(null);
    setText('');
    current.current = '';
    try {
      await onSend(id, body);
      setPendingId(null);
    } catch {
      if (current.current.trim() === '') setText(body);
      setError('Not sent — you seem to be offline. Press Send again to retry.');
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="composer" onSubmit={(e) => void submit(e)} data-testid={testId}>
      <textarea
        value={text}
        placeholder={placeholder}
        onChange={(e) => {
          setText(e.target.value);
          if (pendingId !== null && error === null) setPendingId(null);
        }}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && !e.shiftKey) {
            e.preventDefault();
            void submit(e);
          }
        }}
        rows={2}
      />
      <button type="submit" disabled={busy || text.trim().length === 0}>
        {busy ? 'Sending…' : 'Send'}
      </button>
      {error !== null && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
