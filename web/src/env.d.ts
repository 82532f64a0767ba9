// Ambient declarations: .vue single-file components and the compile-time flags set in vite.config.ts.
/// <reference types="vite/client" />
declare module '*.vue' {
  import type { DefineComponent } from 'vue';
  const component: DefineComponent<object, object, unknown>;
  export default component;
}
