// prom-client as the bundled programs use it (scripts/bundle.js puts this file where they import
// 'prom-client'): the same classes from the package's own files, without what its index loads and
// Bulwark never uses (the Pushgateway, which loads http, https and zlib; the cluster aggregator), and
// the default metrics loaded when first collected (they load v8 and perf_hooks). A `bulwark flags
// list` spends ~7 ms less loading Node's modules.
'use strict';

const Registry = require('prom-client/lib/registry');

exports.register = Registry.globalRegistry;
exports.Registry = Registry;
exports.Counter = require('prom-client/lib/counter');
exports.Gauge = require('prom-client/lib/gauge');
exports.Histogram = require('prom-client/lib/histogram');
exports.Summary = require('prom-client/lib/summary');
exports.collectDefaultMetrics = (...args) => require('prom-client/lib/defaultMetrics')(...args);
