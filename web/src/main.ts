// Entry point of the Rapport staff web app.
import { createApp } from 'vue';
import App from './App.vue';
import { api } from './api/client';
import { disconnectEvents } from './api/events';
import { currentLocale, i18n } from './i18n';
import { router } from './router';
import { setSession } from './session';
import './styles.css';

// An expired session anywhere sends the user to the login page and back to where they were.
api.onUnauthenticated = (next) => {
  disconnectEvents();
  setSession(null);
  if (router.currentRoute.value.name !== 'login') {
    void router.replace({ path: '/login', query: { next, expired: '1' } });
  }
};

document.documentElement.lang = currentLocale();
createApp(App).use(i18n).use(router).mount('#app');
