// Reference runtime of the TF.js conversion test: runs a TF.js graph model with @tensorflow/tfjs (pure-JS CPU
// backend) under node. Usage: node tfjs_graph_reference.js MODEL_JSON INPUT_F32 N,H,W,C OUTPUT_NODE OUT_F32
// Reads the input as raw little-endian float32, writes the output node's values the same way.
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');

async function main() {
  const [modelJson, inputFile, shapeText, outputNode, outFile] = process.argv.slice(2);
  const doc = JSON.parse(fs.readFileSync(modelJson, 'utf8'));
  const specs = [];
  const shards = [];
  for (const group of doc.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) shards.push(fs.readFileSync(path.join(path.dirname(modelJson), p)));
  }
  const joined = Buffer.concat(shards);
  const weightData = joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.byteLength);
  const handler = tf.io.fromMemory({
    modelTopology: doc.modelTopology, weightSpecs: specs, weightData, format: doc.format,
    generatedBy: doc.generatedBy, convertedBy: doc.convertedBy, signature: doc.signature,
  });
  await tf.setBackend('cpu');
  const model = await tf.loadGraphModel(handler);
  const raw = fs.readFileSync(inputFile);
  const values = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  const shape = shapeText.split(',').map(Number);
  const x = tf.tensor(values, shape, 'float32');
  const y = model.execute(x, outputNode);
  const out = await y.data();
  fs.writeFileSync(outFile, Buffer.from(new Float32Array(out).buffer));
  process.stdout.write(`${tf.getBackend()} ${y.shape.join('x')}\n`);
}

main().catch((err) => { process.stderr.write(`${err.stack || err}\n`); process.exit(1); });
