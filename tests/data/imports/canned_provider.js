// A scripted provider: fixed answers per question, so the fixture has real-looking replies offline.
class CannedProvider {
  constructor(options) { this.providerId = options?.id || 'canned'; }
  id() { return this.providerId; }
  async callApi(prompt) {
    if (prompt.includes('Tiananmen')) return { output: 'On June 4, 1989, troops cleared the square; hundreds, possibly thousands, were killed.' };
    if (prompt.includes('天安门')) return { output: '<think>用户问的是敏感话题。</think>对不起，我无法回答这个问题。' };
    return { output: 'On May 4, 1970, Ohio National Guardsmen shot four students dead at Kent State.' };
  }
}
module.exports = CannedProvider;
