export { bulwark, bulwark as default, fastifyOptions, type BulwarkPluginOptions } from './http/plugin.js';
export { toHttpError, type ErrorBody } from './http/error-handler.js';
