// Webpack build of the emolens demo (www/index.html).
//
//   npx webpack --mode production      # -> www/dist/
//
// The wasm package comes from `scripts/build-wasm.sh` (pkg/, wasm-bindgen --target web). The pages
// pass `new URL('../pkg/emolens_bg.wasm', import.meta.url)` to init(), so webpack emits the .wasm
// as a plain asset that the browser fetches (no asyncWebAssembly experiment needed).
const path = require('node:path');
const fs = require('node:fs');
const CopyPlugin = require('copy-webpack-plugin');

const root = __dirname;
const modelDir = path.join(root, 'node_modules/@vladmandic/face-api/model');
const models = ['tiny_face_detector_model', 'face_landmark_68_model', 'face_expression_model'];

if (!fs.existsSync(path.join(root, 'pkg/emolens.js'))) {
  throw new Error('pkg/emolens.js is missing: run scripts/build-wasm.sh before webpack');
}

module.exports = (env, argv) => ({
  mode: argv.mode || 'production',
  context: root,
  entry: {
    index: './www/index.js',
  },
  output: {
    path: path.join(root, 'www/dist'),
    filename: '[name].js',
    assetModuleFilename: '[name].[contenthash:8][ext]',
    publicPath: 'auto',
    clean: true,
  },
  devtool: argv.mode === 'development' ? 'source-map' : false,
  performance: {
    // The wasm (burn + wgpu) is several MiB; that is expected.
    maxAssetSize: 32 * 1024 * 1024,
    maxEntrypointSize: 1024 * 1024,
  },
  module: {
    rules: [{ test: /\.wasm$/, type: 'asset/resource' }],
  },
  plugins: [
    new CopyPlugin({
      patterns: [
        { from: 'www/index.html', to: 'index.html' },
        { from: 'www/style.css', to: 'style.css' },
        ...models.flatMap((m) => [
          { from: path.join(modelDir, `${m}-weights_manifest.json`), to: 'models/' },
          { from: path.join(modelDir, `${m}.bin`), to: 'models/' },
        ]),
        // Bundled sample clip and photo (assets/); the demo reports it on the page if one is missing.
        { from: 'assets/sample.mp4', to: 'sample.mp4', noErrorOnMissing: true },
        { from: 'assets/sample.jpg', to: 'sample.jpg', noErrorOnMissing: true },
      ],
    }),
  ],
});
