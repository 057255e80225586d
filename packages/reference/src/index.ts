// @vat/reference: an independent TensorFlow.js implementation of the VAT step, for parity checks
// against the burn core. Runs in Node and in browsers (no Node APIs here).
//
// It imports the `@tensorflow/tfjs` union package rather than tfjs-core alone: tfjs-core's Node
// bundle (dist/tf-core.node.js) registers no gradient functions, so tf.grad fails there with
// "gradient function not found for Mean"; the union's bundles register them.
export * from './model.js';
export * from './vat.js';
export * from './optim.js';
export * from './step.js';
export * from './ops.js';
export * from './spec.js';
