// A component for the wrong world (see greeter.wit): weft must refuse it as
// an app and name the world weft:devices/app.
export function greet(name) {
  return `Hello, ${name}!`;
}
