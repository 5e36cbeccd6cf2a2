// Entry point of the web app (src/web/): mounts the shell. See app.tsx for the screens.
import { render } from 'preact';
import { App } from './app';
import './styles.css';

render(<App />, document.getElementById('app')!);
