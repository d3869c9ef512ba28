/**
 * /api/v2 routes: users (being written; see issue 3).
 */
import type { RoutePlugin } from '../app.js';

export const usersRoutes: RoutePlugin = () => {};
