/** The package's root entry: the client library (the same as `rheos/client`). */
export * from './client/index.js';
