import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { AdminApp } from './admin/AdminApp.js';
import { CustomerApp } from './customer/CustomerApp.js';
import { StaffApp } from './staff/StaffApp.js';

/** One bundle, three apps: the customer page, the admin dashboard, and the staff workspace. */
function App() {
  const path = window.location.pathname;
  if (path.startsWith('/customer')) return <CustomerApp />;
  if (path.startsWith('/admin')) return <AdminApp />;
  return <StaffApp />;
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
