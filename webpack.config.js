// Webpack build of the emolens demo (www/index.html).
//
//   npx webpack --mode production      # -> www/dist/
//
// The pages import the npm package `emolens` by name, as a user's project would: pkg/, built by
// `scripts/build-wasm.sh` and made a package by `scripts/package.sh` (its package.json `exports`).
// The package's init() finds its .wasm with `new URL('emolens_bg.wasm', import.meta.url)`, so
// webpack emits the .wasm as a plain asset that the browser fetches; the face models are the
// package's models/.
const path = require('node:path');
const fs = require('node:fs');
const CopyPlugin = require('copy-webpack-plugin');

const root = __dirname;
const packageDir = path.join(root, 'pkg');
const modelDir = path.join(packageDir, 'models');

if (!fs.existsSync(path.join(packageDir, 'emolens.js'))) {
  throw new Error('pkg/emolens.js is missing: run scripts/build-wasm.sh and scripts/package.sh before webpack');
}
if (!fs.existsSync(modelDir) || JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8')).name !== 'emolens') {
  throw new Error('pkg/ is not the emolens package yet: run scripts/package.sh (after scripts/build-wasm.sh) before webpack');
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
  resolve: {
    alias: { emolens: packageDir },
  },
  module: {
    rules: [{ test: /\.wasm$/, type: 'asset/resource' }],
  },
  plugins: [
    new CopyPlugin({
      patterns: [
        { from: 'www/index.html', to: 'index.html' },
        { from: 'www/style.css', to: 'style.css' },
        { from: modelDir, to: 'models/' },
        // Bundled sample clip and photo (assets/); the demo reports it on the page if one is missing.
        { from: 'assets/sample.mp4', to: 'sample.mp4', noErrorOnMissing: true },
        { from: 'assets/sample.jpg', to: 'sample.jpg', noErrorOnMissing: true },
      ],
    }),
  ],
});
