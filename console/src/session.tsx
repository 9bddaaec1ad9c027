// Who is signed in, for every page: the role decides which controls show (a viewer sees none that
// mutate; the API refuses them anyway).
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { Session } from './api.js';

export const SessionContext = createContext<Session | undefined>(undefined);

/** True when the signed-in caller may change things (role operator). */
export function useCanOperate(): boolean {
  return useContext(SessionContext)?.role === 'operator';
}
