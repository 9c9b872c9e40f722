// The web portal's entry point: starts the app (router, session, screens) once the page has loaded.
import { start } from "/app/app.js";

start();
