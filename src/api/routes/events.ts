/**
 * /api/v2 routes: events (being written; see issue 3).
 */
import type { RoutePlugin } from '../app.js';

export const eventsRoutes: RoutePlugin = () => {};
