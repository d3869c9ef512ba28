/**
 * /api/v2 routes: attribs (being written; see issue 3).
 */
import type { RoutePlugin } from '../app.js';

export const attribsRoutes: RoutePlugin = () => {};
